"""Messaging: templates (Liquid), the send outbox and the delivery pipeline, tracking links."""

"""Outbound webhooks (SPEC §5): endpoints with their signing secrets, HMAC-signed delivery through
the send pipeline with an SSRF guard, and event subscriptions (docs/webhooks.md)."""

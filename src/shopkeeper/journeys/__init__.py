"""Journeys: versioned definitions, durable execution, the channel optimiser and send-time choice."""

"""The inbox: conversations across channels, their triage (classification, routing, SLA) and the agents' side."""

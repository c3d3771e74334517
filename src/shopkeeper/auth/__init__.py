"""Workspaces, API keys, users and roles, and the request dependencies that authenticate them."""

"""The settings pages, one module per section (channels, topics, sensitive data, contact policy,
API keys, users, webhooks); `web/pages/settings.py` mounts them under /settings."""

"""Messaging apps: WhatsApp (Cloud API), Messenger (Send API) and Telegram (Bot API) providers,
and their signed inbound webhooks (messages from customers, delivery and read reports)."""

"""Web chat: a WebSocket for site visitors, the embeddable widget, and the hub that carries
outbound chat messages to the visitor's open sockets (see docs/web-chat.md)."""

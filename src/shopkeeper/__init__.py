"""Shopkeeper: one memory of every customer, a conversation on every channel."""

__version__ = "0.1.0"

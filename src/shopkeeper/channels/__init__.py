"""Channels: one sub-package per channel, each with its providers and inbound handling."""

"""Customers, their identities, merges and unmerges, identity resolution and the 360° view."""

"""Consent and contact policy: topics, subscriptions, the consent log, `can_contact`, preferences."""

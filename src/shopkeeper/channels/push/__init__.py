"""Web Push (VAPID, RFC 8030/8291/8292): browser subscriptions kept as device_token identities, and
the `webpush` provider that encrypts each message for one subscription (docs/web-push.md)."""

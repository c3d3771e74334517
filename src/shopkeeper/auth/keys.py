"""API key material: random, shown once, stored only as a SHA-256 digest.

Keys carry 192 bits of randomness, so a fast digest is enough (there is nothing to brute-force);
passwords, which people choose, are hashed with argon2 instead (see `passwords`).
"""

from __future__ import annotations

import hashlib
import secrets

PREFIXES = {"write": "wk_", "secret": "sk_"}


def generate_key(kind: str) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(24)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:10]

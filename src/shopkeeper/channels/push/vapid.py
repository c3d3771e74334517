"""VAPID keys (RFC 8292): the application server's P-256 key pair. The private key goes in the
`webpush` provider's settings; the public key is what the page passes to
`pushManager.subscribe({applicationServerKey})`."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from shopkeeper.errors import Invalid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    """The uncompressed point, base64url without padding (the applicationServerKey)."""
    return b64url(
        key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def generate() -> tuple[str, str]:
    """A new pair: (private key as 32 raw bytes in base64url, public key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(raw), public_key_of(key)


def load(private_key: object, field: str = "settings.vapid_private_key") -> Vapid02:
    """A signer from the private key: 32 raw bytes or DER in base64url, or PEM."""
    if not isinstance(private_key, str) or not private_key.strip():
        raise Invalid(f"{field}: required (make a pair with `shopkeeper push vapid-keys`)", field=field)
    text = private_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ValueError("not a P-256 key")
            return Vapid02(key)
        vapid = Vapid02.from_string(text)
        if not isinstance(vapid.private_key.curve, ec.SECP256R1):
            raise ValueError("not a P-256 key")
        return vapid
    except Exception as exc:  # noqa: BLE001 - cryptography raises several types for a bad key
        raise Invalid(f"{field}: not a P-256 private key ({type(exc).__name__})", field=field) from None

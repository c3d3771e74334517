"""An outbound email as bytes: headers (Message-ID for threading, List-Unsubscribe), a text and
an HTML part, and a DKIM signature when the sending domain has a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

import dkim

from shopkeeper.channels.base import OutboundMessage
from shopkeeper.errors import Invalid

# What a DKIM signature covers: the headers a receiver shows or acts on.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post")


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    private_key: bytes  # PEM (RSA) or a raw/base64 ed25519 key, as dkimpy takes it
    algorithm: str = "rsa-sha256"  # or "ed25519-sha256"


@dataclass(frozen=True, slots=True)
class Sender:
    email: str
    name: str | None = None
    reply_to: str | None = None
    return_path: str | None = None  # the envelope sender, where bounces go

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]

    def check(self) -> None:
        try:
            Address(addr_spec=self.email)
        except (ValueError, IndexError):
            raise Invalid(
                f"settings.from_email: {self.email!r} is not an email address", field="settings.from_email"
            ) from None


def message_id_for(send_id: str, domain: str) -> str:
    """Deterministic, so a reply's In-Reply-To finds the send it answers."""
    return f"<{send_id}@{domain}>"


def build(
    message: OutboundMessage, sender: Sender, now: datetime | None = None, dkim_key: DkimKey | None = None
) -> tuple[str, bytes]:
    """The Message-ID and the bytes to put on the wire (CRLF line endings)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = formataddr((sender.name or "", sender.email)) if sender.name else sender.email
    mail["To"] = message.to
    mail["Subject"] = message.content.get("subject", "")
    mail["Date"] = format_datetime(now or datetime.now(UTC))
    message_id = message_id_for(message.send_id, sender.domain)
    mail["Message-ID"] = message_id
    if sender.reply_to:
        mail["Reply-To"] = sender.reply_to
    in_reply_to = message.metadata.get("in_reply_to")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = " ".join([*message.metadata.get("references", []), in_reply_to])
    for name, value in message.headers.items():
        mail[name] = value
    text = message.content.get("text")
    html = message.content.get("html")
    if text is not None or html is None:
        mail.set_content(text or "", subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        if text is not None:
            mail.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        else:
            mail.set_content(html, subtype="html", charset="utf-8", cte="quoted-printable")
    raw = mail.as_bytes()
    if dkim_key is not None:
        signature = dkim.sign(
            raw,
            dkim_key.selector.encode(),
            dkim_key.domain.encode(),
            dkim_key.private_key,
            include_headers=[h for h in SIGNED_HEADERS if mail.get(h.decode()) is not None],
            signature_algorithm=dkim_key.algorithm.encode(),
        )
        raw = signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + raw
    return message_id, raw


def check_key(key: DkimKey, sender: Sender) -> None:
    """Sign a small message once, so that a wrong key is refused when the provider is saved
    rather than failing every send."""
    probe = OutboundMessage("probe", "ws", "c", "email", "transactional", sender.email, {"subject": "probe"}, "probe")
    try:
        build(probe, sender, dkim_key=key)
    except (dkim.DKIMException, ValueError, TypeError) as exc:
        raise Invalid(
            f"settings.dkim.private_key: cannot sign with it ({exc})", field="settings.dkim.private_key"
        ) from None

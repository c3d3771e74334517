"""Open pixel and click redirects: signed tokens that name the send (and the link), rewritten
into an email's HTML at send time.

A token is `<workspace id>.<payload>.<mac>`: the workspace id only picks the secret that checks
the MAC. Tracking tokens do not expire (a customer may open a mail
a year later), and carry nothing but ids and the target URL, so a forged or edited one is simply
refused. The redirect only goes to the URL that was signed: no open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from html import unescape
from urllib.parse import quote

_SALT = "shopkeeper.tracking.v1"
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MAX_TOKEN = 4096
# href="http…" in an <a> tag; mailto:, tel:, anchors and template-less links are left alone.
_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
PIXEL_PATH = "/t/o/"
CLICK_PATH = "/t/c/"


@lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    """A key of its own for tracking, derived from the workspace secret (the secret itself also
    signs consent links; one leaked tracking key must not forge those)."""
    return hmac.new(secret.encode(), _SALT.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Tracked:
    workspace_id: str
    send_id: str
    url: str | None  # the click target; None for the open pixel


def make_token(workspace_id: str, secret: str, send_id: str, url: str | None = None) -> str:
    """`<workspace>.<payload>.<mac>`: payload = send id, and the URL for a click, base64url; the
    mac is HMAC-SHA256 truncated to 128 bits (plain hmac: a mail carries one per link, and the
    bench showed itsdangerous's serializer costing as much as the render)."""
    payload = send_id if url is None else f"{send_id}\x1f{url}"
    body = _b64(payload.encode())
    mac = hmac.new(_key(secret), f"{workspace_id}.{body}".encode(), hashlib.sha256).digest()[:16]
    return f"{workspace_id}.{body}.{_b64(mac)}"


def workspace_of(token: str) -> str | None:
    """The workspace whose secret checks this token, or None when the token cannot be one."""
    if len(token) > _MAX_TOKEN or token.count(".") != 2:
        return None
    workspace_id = token.split(".", 1)[0]
    return workspace_id if _WORKSPACE_ID.match(workspace_id) else None


def verify(token: str, secret: str) -> Tracked | None:
    workspace_id, body, mac = token.split(".")
    expected = hmac.new(_key(secret), f"{workspace_id}.{body}".encode(), hashlib.sha256).digest()[:16]
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        payload = _unb64(body).decode()
    except (ValueError, UnicodeError):
        return None
    send_id, _, url = payload.partition("\x1f")
    if not send_id:
        return None
    return Tracked(workspace_id, send_id, url or None)


def add_tracking(html: str, *, base_url: str, workspace_id: str, secret: str, send_id: str) -> str:
    """Every http(s) link through the click redirect, and the open pixel before </body>."""
    base = base_url.rstrip("/")

    def rewrite(match: re.Match[str]) -> str:
        target = unescape(match.group(3))
        token = make_token(workspace_id, secret, send_id, target)
        return f"{match.group(1)}{match.group(2)}{base}{CLICK_PATH}{quote(token, safe='')}{match.group(2)}"

    html = _LINK.sub(rewrite, html)
    pixel = (
        f'<img src="{base}{PIXEL_PATH}{quote(make_token(workspace_id, secret, send_id), safe="")}.gif" '
        'width="1" height="1" alt="" style="display:none">'
    )
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + pixel
    at = ends[-1].start()
    return html[:at] + pixel + html[at:]

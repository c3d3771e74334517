"""Open pixel and click redirects: signed tokens that name the send (and the link), rewritten
into an email's HTML at send time.

A token is `<workspace id>.<signed payload>` like the consent links: the workspace id only picks
the secret that checks the signature. Tracking tokens do not expire (a customer may open a mail
a year later), and carry nothing but ids and the target URL, so a forged or edited one is simply
refused. The redirect only goes to the URL that was signed: no open redirect.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import quote

from itsdangerous import BadData, URLSafeSerializer

_SALT = "shopkeeper.tracking.v1"
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MAX_TOKEN = 4096
# href="http…" in an <a> tag; mailto:, tel:, anchors and template-less links are left alone.
_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
PIXEL_PATH = "/t/o/"
CLICK_PATH = "/t/c/"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


@dataclass(frozen=True, slots=True)
class Tracked:
    workspace_id: str
    send_id: str
    url: str | None  # the click target; None for the open pixel


def make_token(workspace_id: str, secret: str, send_id: str, url: str | None = None) -> str:
    payload: list[str] = [send_id] if url is None else [send_id, url]
    return f"{workspace_id}.{_serializer(secret).dumps(payload)}"


def workspace_of(token: str) -> str | None:
    """The workspace whose secret checks this token, or None when the token cannot be one."""
    if len(token) > _MAX_TOKEN or "." not in token:
        return None
    workspace_id = token.split(".", 1)[0]
    return workspace_id if _WORKSPACE_ID.match(workspace_id) else None


def verify(token: str, secret: str) -> Tracked | None:
    workspace_id, signed = token.split(".", 1)
    try:
        payload = _serializer(secret).loads(signed)
    except (BadData, UnicodeError, ValueError):
        return None
    if not isinstance(payload, list) or not payload or not all(isinstance(p, str) for p in payload):
        return None
    return Tracked(workspace_id, payload[0], payload[1] if len(payload) > 1 else None)


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

"""The sensitive-data guard (SPEC §4, C7): may a marketing segment or template read these traits?

Segments and templates (built in later issues) must call `check_trait_use` whenever one is
created or changed, with every trait path it reads, before saving it: a marketing use of a
sensitive trait without an active allowance is refused with `SensitiveDataUse` (422, code
`sensitive_trait`) and nothing is saved. Transactional use is allowed: an order confirmation
may need what a campaign may not exploit, and it is not an attempt to target anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopkeeper.errors import Invalid, SensitiveDataUse
from shopkeeper.privacy.models import SensitiveAllowance, SensitiveTrait

USES = ("segment", "template")
PURPOSES = ("marketing", "transactional")
# Ways a segment condition or a Liquid template may spell "the profile's traits".
_TRAIT_ROOTS = ("customer.traits", "traits")
_BRACKET_RE = re.compile(r"\[\s*(['\"])(.*?)\1\s*\]")


def trait_of(path: str) -> str:
    """The top-level trait a path reads, lower-cased: `Health.condition` → `health`,
    `traits.health` → `health`, `customer.traits["family_status"]` → `family_status`."""
    text = path.strip()
    lowered = text.lower()
    for root in _TRAIT_ROOTS:
        if lowered.startswith((f"{root}.", f"{root}[")):
            text = text[len(root) :].lstrip(".")
            break
    bracketed = _BRACKET_RE.match(text)
    if bracketed:
        return bracketed.group(2).strip().lower()
    return re.split(r"[.\[]", text, maxsplit=1)[0].strip().lower()


def check_trait_use(
    session: Session, workspace_id: str, trait_names: Iterable[str], usage: str, purpose: str
) -> dict[str, str]:
    """Refuse (raise `SensitiveDataUse`) a marketing `usage` ("segment" or "template") of any
    sensitive trait that has no active allowance for that usage or for `any`.

    Names match case-insensitively, and a path counts as its first segment (`health.condition`
    and `traits.health` both read `health`). Returns, for each sensitive trait that is used and
    allowed, why: "transactional" or the allowance id (for "explain every decision"). `usage`
    and `purpose` are plain strings, checked here (Invalid), as callers pass stored values on.
    """
    if usage not in USES:
        raise Invalid(f"usage: one of {', '.join(USES)}", field="usage")
    if purpose not in PURPOSES:
        raise Invalid(f"purpose: one of {', '.join(PURPOSES)}", field="purpose")
    used = {trait_of(name) for name in trait_names if name and name.strip()}
    used.discard("")
    if not used:
        return {}
    sensitive = sorted(
        session.scalars(
            select(SensitiveTrait.name).where(
                SensitiveTrait.workspace_id == workspace_id, SensitiveTrait.name.in_(used)
            )
        )
    )
    if not sensitive:
        return {}
    if purpose == "transactional":
        return dict.fromkeys(sensitive, "transactional")
    allowed: dict[str, str] = {}
    for trait, allowance_id in session.execute(
        select(SensitiveAllowance.trait, SensitiveAllowance.id)
        .where(
            SensitiveAllowance.workspace_id == workspace_id,
            SensitiveAllowance.trait.in_(sensitive),
            SensitiveAllowance.usage.in_((usage, "any")),
            SensitiveAllowance.revoked_at.is_(None),
        )
        .order_by(SensitiveAllowance.created_at)
    ):
        allowed.setdefault(trait, f"allowance {allowance_id}")
    denied = [trait for trait in sensitive if trait not in allowed]
    if denied:
        raise SensitiveDataUse(denied, usage)
    return allowed

"""Extra sections of the 360° view, contributed by other domains (consent, segments, inbox…).

The customer domain knows nothing of them: each registers a function that, given a profile's ids,
returns a JSON-able section, and the view includes every registered section by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

Section = Callable[[Session, str, Sequence[str]], Any]
_sections: dict[str, Section] = {}


def register_section(name: str, section: Section) -> None:
    _sections[name] = section


def sections_for(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, Any]:
    return {name: section(session, workspace_id, ids) for name, section in sorted(_sections.items())}

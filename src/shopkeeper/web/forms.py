"""Reading a posted form and telling its author what is wrong with it, next to the field.

Pages validate with the API's own Pydantic schemas (`validated`), so a form and an API call are
refused for the same reasons; a domain error's `field` then picks the input it belongs to
(`field_errors`), and anything that names no input is shown above the form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from shopkeeper.errors import Invalid, ShopkeeperError

M = TypeVar("M", bound=BaseModel)
FORM = "_form"  # errors that belong to no single input
_INDEX = re.compile(r"\[\d+\]|\.\d+(?=\.|$)")


async def read_form(request: Request) -> FormData:
    """The posted fields (Starlette keeps the form the CSRF check already parsed). A NUL character
    is refused here: PostgreSQL cannot store one, and a URL-encoded %00 gets past the input guard."""
    form = await request.form()
    for name, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:
            raise Invalid(f"{name[:80]}: contains a NUL character, which cannot be stored", field=name[:80])
    return form


Form = Annotated[FormData, Depends(read_form)]


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    """A blank input means "not set"."""
    return text(form, name) or None


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("1", "on", "true", "yes")


def many(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def values_of(form: FormData) -> dict[str, Any]:
    """What was typed, to fill the form in again after a refusal (lists for repeated names)."""
    out: dict[str, Any] = {}
    for name in form:
        if name == "csrf":
            continue
        items = [v for v in form.getlist(name) if isinstance(v, str)]
        out[name] = items if len(items) > 1 else (items[0] if items else "")
    return out


def validated(model: type[M], data: Mapping[str, Any], messages: Mapping[str, str] | None = None) -> M:
    """`model` built from `data`, or an `Invalid` naming the first wrong field as the API would
    (`messages` replaces Pydantic's wording for a field, e.g. a pattern people cannot read)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "missing":
            message = "is required"
        base = _INDEX.sub("", field)
        if messages and base in messages:
            message = messages[base]
        given = first.get("input")
        if first["type"] in ("literal_error", "string_pattern_mismatch") and isinstance(given, str) and given:
            message += f", not {given[:60]!r}"
        raise Invalid(f"{field}: {message}", field=field) from None


def field_errors(
    exc: ShopkeeperError, fields: Iterable[str], aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`{input name: message}` for a domain error: its field if the form has that input, else the
    nearest enclosing one (`settings.host` → `settings`, `channels.0` → `channels`), else the form.
    `aliases` names the input of a field the form shows differently (`type` → `provider`)."""
    known = set(fields)
    field = _INDEX.sub("", exc.field or "")
    if aliases and field in aliases:
        field = aliases[field]
    candidate = field
    while candidate:
        if candidate in known:
            message = exc.message
            if candidate == field:  # the input says which field; a nested one keeps its path
                message = re.sub(r"^[\w.\[\]]+: ", "", message, count=1)
            return {candidate: message}
        candidate = candidate.rpartition(".")[0]
    return {FORM: exc.message}

"""Liquid message templates: checked when saved (with line and column), rendered at send time.

Content is per channel — an email has a subject, an HTML and a text part; an SMS a text; a push a
title, a body and a link — so one template can serve whichever channel a journey picks. HTML parts
escape every value they insert (a trait is customer input); the other parts are plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from liquid import BoundTemplate, Environment, Undefined
from liquid.exceptions import LiquidError

from shopkeeper.errors import Invalid

CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "whatsapp": ("text",),
    "push": ("title", "body", "url"),
    "chat": ("text",),
    "voice": ("script",),
    "webhook": ("body",),
    "messenger": ("text",),
    "telegram": ("text",),
}
REQUIRED_PARTS: dict[str, tuple[str, ...]] = {
    "email": ("subject",),
    "sms": ("text",),
    "whatsapp": ("text",),
    "push": ("title", "body"),
    "chat": ("text",),
    "voice": ("script",),
    "webhook": ("body",),
    "messenger": ("text",),
    "telegram": ("text",),
}
MAX_PART_BYTES = 256 * 1024


class _BoundedEnvironment(Environment):
    """A template is written by a marketer but renders customer data at scale: bound its work."""

    loop_iteration_limit = 10_000
    output_stream_limit = 1_000_000


# A trait missing on one customer renders empty (as in Braze and Customer.io; `default` gives a
# fallback) rather than failing that customer's message; mistakes of syntax fail at save time.
_TEXT = _BoundedEnvironment(undefined=Undefined, autoescape=False)
_HTML = _BoundedEnvironment(undefined=Undefined, autoescape=True)


def _json(value: object) -> str:
    """`{{ customer.first_name | json }}`: the value as JSON (quoted and escaped), so a webhook body
    stays valid JSON whatever the customer typed; a missing value is `null`."""
    if isinstance(value, Undefined):
        return "null"
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


_TEXT.filters["json"] = _json
_HTML.filters["json"] = _json


class TemplateError(Invalid):
    code = "template_error"


@dataclass(frozen=True, slots=True)
class CompiledContent:
    """Parsed templates for each channel and part."""

    parts: Mapping[str, Mapping[str, BoundTemplate]]

    @property
    def channels(self) -> list[str]:
        return sorted(self.parts)

    def render(self, channel: str, context: Mapping[str, Any]) -> dict[str, str]:
        """Renders one channel's parts; a failing filter or a runaway loop is a TemplateError
        naming the part, line and column, so the send can record why it failed."""
        if channel not in self.parts:
            raise TemplateError(f"the template has no {channel} content", field="channel")
        rendered: dict[str, str] = {}
        for part, template in self.parts[channel].items():
            try:
                rendered[part] = template.render(**context)
            except LiquidError as exc:
                raise _located(exc, f"content.{channel}.{part}") from None
        return rendered

    def variables(self) -> set[str]:
        """Every variable path any part reads, e.g. `customer.traits.first_name`."""
        found: set[str] = set()
        for templates in self.parts.values():
            for template in templates.values():
                for uses in template.analyze().variables.values():
                    for variable in uses:
                        found.add(".".join(str(segment) for segment in variable.segments))
        return found


def _location(exc: LiquidError, source: str | None) -> tuple[int, int] | None:
    """1-based line and column of the token the error points at; an unclosed block points past
    the end of the template (python-liquid gives it no position)."""
    token = getattr(exc, "token", None)
    text = getattr(token, "source", None) or source
    if token is None or text is None:
        return None
    index = token.start_index if token.start_index >= 0 else len(text)
    before = text[:index]
    line = before.count("\n") + 1
    column = index - (before.rfind("\n") + 1) + 1
    return line, column


def _located(exc: LiquidError, field: str, source: str | None = None) -> TemplateError:
    where = _location(exc, source)
    message = getattr(exc, "message", None) or str(exc).splitlines()[0]
    at = f" at line {where[0]}, column {where[1]}" if where else ""
    return TemplateError(f"{field}: {message}{at}", field=field)


def _check_filters(template: BoundTemplate, env: Environment, field: str, source: str) -> None:
    """Liquid looks filters up only when rendering; a typo would fail every send. Refuse it now."""
    for name, spans in template.analyze().filters.items():
        if name not in env.filters:
            index = spans[0].index if spans else 0
            before = source[:index]
            line, column = before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1
            raise TemplateError(f"{field}: unknown filter {name!r} at line {line}, column {column}", field=field)


def compile_content(content: Mapping[str, Any]) -> CompiledContent:
    """Checks a template's content: known channels and parts, required parts present, every part
    valid Liquid. Errors name the part and the line and column inside it."""
    if not isinstance(content, Mapping) or not content:
        raise TemplateError('content: give at least one channel, e.g. {"email": {"subject": …}}', field="content")
    parts: dict[str, dict[str, BoundTemplate]] = {}
    for channel, sources in content.items():
        if channel not in CHANNEL_PARTS:
            raise TemplateError(
                f"content.{channel}: not a channel; one of {', '.join(CHANNEL_PARTS)}", field=f"content.{channel}"
            )
        if not isinstance(sources, Mapping):
            raise TemplateError(f"content.{channel}: an object of parts", field=f"content.{channel}")
        for part in sources:
            if part not in CHANNEL_PARTS[channel]:
                allowed = ", ".join(CHANNEL_PARTS[channel])
                raise TemplateError(
                    f"content.{channel}.{part}: not a part of {channel}; one of {allowed}",
                    field=f"content.{channel}.{part}",
                )
        for part in REQUIRED_PARTS[channel]:
            if not isinstance(sources.get(part), str) or not sources[part].strip():
                raise TemplateError(f"content.{channel}.{part}: required", field=f"content.{channel}.{part}")
        if channel == "email" and not (sources.get("html") or sources.get("text")):
            raise TemplateError("content.email: give an html or a text part (or both)", field="content.email.text")
        compiled: dict[str, BoundTemplate] = {}
        for part, source in sources.items():
            field = f"content.{channel}.{part}"
            if not isinstance(source, str):
                raise TemplateError(f"{field}: must be text", field=field)
            if len(source.encode()) > MAX_PART_BYTES:
                raise TemplateError(f"{field}: over {MAX_PART_BYTES // 1024} KB", field=field)
            env = _HTML if part == "html" else _TEXT
            try:
                compiled[part] = env.from_string(source)
            except LiquidError as exc:
                raise _located(exc, field, source) from None
            _check_filters(compiled[part], env, field, source)
        parts[channel] = compiled
    return CompiledContent(parts)

"""Domain errors with stable codes; the HTTP layer maps them to `{"error": {...}}` once."""

from __future__ import annotations


class ShopkeeperError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class Invalid(ShopkeeperError):
    code = "invalid"
    status = 400


class TooLarge(ShopkeeperError):
    code = "too_large"
    status = 400


class Unauthorized(ShopkeeperError):
    code = "unauthorized"
    status = 401


class Forbidden(ShopkeeperError):
    code = "forbidden"
    status = 403


class NotFound(ShopkeeperError):
    code = "not_found"
    status = 404


class Conflict(ShopkeeperError):
    code = "conflict"
    status = 409


class SensitiveDataUse(ShopkeeperError):
    """Marketing use of a sensitive trait that the workspace has not allowed (SPEC §4, C7).

    Raised by `privacy.guard.check_trait_use` when a segment or template is saved; the message
    names the trait(s) and the one way to allow the use: an allowance that records why.
    """

    code = "sensitive_trait"
    status = 422

    def __init__(self, traits: list[str], usage: str, *, field: str | None = None) -> None:
        plural = len(traits) > 1
        names = ", ".join(repr(t) for t in traits)
        super().__init__(
            f"sensitive trait{'s' if plural else ''} {names}: a marketing {usage} cannot use "
            f"{'them' if plural else 'it'} unless an admin allows that use and records why "
            f'(POST /api/v1/sensitive-allowances {{"trait": "{traits[0]}", "usage": "{usage}", "reason": "…"}}); '
            "transactional messages may use sensitive traits",
            field=field,
        )
        self.traits = traits
        self.usage = usage


class Unavailable(ShopkeeperError):
    code = "unavailable"
    status = 503

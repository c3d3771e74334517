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


class Unavailable(ShopkeeperError):
    code = "unavailable"
    status = 503

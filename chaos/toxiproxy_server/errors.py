"""The API's errors, with the reference's exact texts and status codes (spec §2)."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API answers with ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request_body(detail: str) -> ApiError:
    return ApiError(400, "bad request body: " + detail)


def missing_field(what: str) -> ApiError:
    return ApiError(400, "missing required field: " + what)


PROXY_NOT_FOUND = (404, "proxy not found")
PROXY_EXISTS = (409, "proxy already exists")
INVALID_STREAM = (400, "stream was invalid, can be either upstream or downstream")
INVALID_TOXIC_TYPE = (400, "invalid toxic type")
TOXIC_EXISTS = (409, "toxic already exists")
TOXIC_NOT_FOUND = (404, "toxic not found")


def error(kind: tuple[int, str]) -> ApiError:
    return ApiError(*kind)

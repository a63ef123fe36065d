"""Reading JSON request bodies with clear 4xx answers for everything malformed."""

import json
from typing import Any

from starlette.requests import Request

from alta_common.errors import ApiError


async def read_json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers past Python's digit limit;
        # RecursionError, nesting deep enough to exhaust the parser.
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object.")
    return data


def _field_error(value: Any) -> str | None:
    if value is None:
        return "This field is required."
    if not isinstance(value, str):
        return "This field must be text."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid in JSON, not in UTF-8) would break every later step.
        return "This field contains characters that are not valid text."
    return None


def string_fields(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The named fields as strings, or a 422 naming each one that is missing or not text."""
    errors = {name: error for name in names if (error := _field_error(data.get(name)))}
    if errors:
        raise ApiError(422, "invalid_input", "Some fields are missing or invalid.", fields=errors)
    return {name: data[name] for name in names}

"""HTTP plumbing shared by the dialects: bodies, forms, Basic auth, decoding into wire types."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final, TypeVar

import msgspec
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Route

from settle.api.forms import MAX_DEPTH, form_value
from settle.errors import ErrorCode, MalformedBody, PayloadTooLarge, ValidationError

T = TypeVar("T")

DEFAULT_MAX_BODY: Final = 1 << 20  # 1 MiB: far above any real invoice, far below harm.

_TYPE_NAMES: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_AT_RE: Final = re.compile(r" - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`$")
_RULES: Final = [
    (re.compile(r"Expected `str` of length <= (\d+)"), r"must be at most \1 characters"),
    (re.compile(r"Expected `str` of length >= (\d+)"), r"must be at least \1 characters"),
    (re.compile(r"Expected `array` of length <= (\d+)"), r"must have at most \1 items"),
    (re.compile(r"Expected `array` of length >= (\d+)"), r"must have at least \1 items"),
    (re.compile(r"Expected `object` of length <= (\d+)"), r"must have at most \1 entries"),
    (re.compile(r"Expected `int` >= (-?\d+)"), r"must be at least \1"),
    (re.compile(r"Expected `int` <= (-?\d+)"), r"must be at most \1"),
    (re.compile(r"Invalid enum value (.*)"), r"\1 is not an allowed value"),
    (re.compile(r"Expected `datetime`.*"), "must be an RFC 3339 date-time with a time zone"),
    (re.compile(r"Invalid RFC3339 encoded datetime"), "must be an RFC 3339 date-time"),
]


def _friendly(text: str) -> tuple[str, str]:
    """msgspec's 'Expected `str`, got `int` - at `$.a[0].b`' -> ('a[0].b', 'must be a string')."""
    path = ""
    at = _AT_RE.search(text)
    if at:
        path = at.group("path").lstrip(".") + ("[key]" if at.group("key") else "")
        text = text[: at.start()]
    missing = re.fullmatch(r"Object missing required field `([^`]+)`", text)
    if missing:
        return (f"{path}.{missing.group(1)}" if path else missing.group(1)), "is required"
    got = re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", text)
    if got:
        want = " or ".join(_TYPE_NAMES.get(t.strip(), t.strip()) for t in got.group(1).split("|"))
        return path, f"must be {want}, not {_TYPE_NAMES.get(got.group(2), got.group(2))}"
    for pattern, replacement in _RULES:
        if pattern.fullmatch(text):
            return path, pattern.sub(replacement, text)
    return path, text[:1].lower() + text[1:]


def validation_error(exc: msgspec.ValidationError) -> ValidationError:
    path, what = _friendly(str(exc))
    return ValidationError(f"{path or 'body'}: {what}.", field=path or None)


async def read_body(request: Request, limit: int = DEFAULT_MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise MalformedBody("Content-Length is not a number.") from None
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def check_depth(value: Any, depth: int = 0) -> None:
    """Bound free-form JSON (metadata-like objects) so nothing downstream recurses deeply."""
    if depth > MAX_DEPTH:
        raise MalformedBody(f"The body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, dict):
        for item in value.values():
            check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_depth(item, depth + 1)


NUL_CODE: Final = ErrorCode.INVALID_CHARACTER
_NUL_ESCAPE: Final = b"\\u0000"


def reject_nul(decoded: Any) -> None:
    """Refuse NUL characters in the decoded fields (strings and object keys; unknown fields
    were dropped, as everywhere): PostgreSQL text cannot hold them, and no real field needs
    one. Iterative: free-form JSON fields may be deep."""
    try:
        value = msgspec.to_builtins(decoded)
    except RecursionError:
        raise MalformedBody(f"The body is nested deeper than {MAX_DEPTH} levels.") from None
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            bad = "\x00" in item
        elif isinstance(item, dict):
            bad = any("\x00" in key for key in item)
            stack.extend((f"{path}.{k}" if path else k, v) for k, v in item.items())
        elif isinstance(item, list):
            bad = False
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
        else:
            bad = False
        if bad:
            where = path.replace("\x00", "")
            raise ValidationError(
                f"{where or 'body'}: must not contain NUL characters.",
                code=NUL_CODE,
                field=where or None,
            )


def decode_body(body: bytes, content_type: str, wire_type: type[T]) -> T:
    """Decode a JSON or form body into ``wire_type``; every failure is a 400 naming the field.

    Both encodings are converted strictly: a form's values are strings, turned into integers
    and booleans by the wire grammar (``settle.api.forms``), never by msgspec's lax mode.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded" or (media == "" and body[:1] not in b"{["):
        data: Any = form_value(body, wire_type)
        try:
            converted = msgspec.convert(data, wire_type, strict=True)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        if b"%00" in body or b"\x00" in body:
            reject_nul(converted)
        return converted
    if media not in ("", "application/json", "text/json") and not media.endswith("+json"):
        raise MalformedBody(
            f"Content-Type {media!r} is not supported; send application/json or "
            "application/x-www-form-urlencoded.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    if not body.strip():
        body = b"{}"
    try:
        decoded = msgspec.json.decode(body, type=wire_type, strict=True)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}.") from None
    except UnicodeDecodeError:  # msgspec's error for invalid UTF-8 inside a string
        raise MalformedBody("The body is not valid UTF-8.") from None
    except RecursionError:
        raise MalformedBody(f"The body is nested deeper than {MAX_DEPTH} levels.") from None
    if not body.isascii():
        # msgspec checks the strings it decodes, not those of the unknown fields it skips.
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBody("The body is not valid UTF-8.") from None
    if _NUL_ESCAPE in body:  # rare: only then look for the field that holds it
        reject_nul(decoded)
    return decoded


def basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return username, password


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110: a 405 lists them in Allow).
    Starlette's own Allow names only the first route that matched the path."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))

"""HTTP plumbing shared by the dialects: bodies, forms, Basic auth, decoding into wire types."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request

from settle.errors import MalformedBody, PayloadTooLarge, ValidationError

T = TypeVar("T")

DEFAULT_MAX_BODY: Final = 1 << 20  # 1 MiB: far above any real invoice, far below harm.
MAX_DEPTH: Final = 16

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


NUL_CODE: Final = "request.validation.invalid-character"
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


_KEY_RE: Final = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


def parse_form(body: bytes) -> dict[str, Any]:
    """``a=1&b[c]=2&d[0][e]=3&f[]=x`` -> ``{"a": "1", "b": {"c": "2"}, "d": [{"e": "3"}],
    "f": ["x"]}`` (the bracket convention of curl -d examples and PHP/Rails clients)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=2000
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody(f"The form body is not valid: {exc}.") from None
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY_RE.fullmatch(raw_key)
        if match is None:
            raise MalformedBody(f"Form field name {raw_key!r} is not valid.")
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        if len(parts) > MAX_DEPTH:
            raise MalformedBody(f"Form field {raw_key!r} is nested too deeply.")
        node: Any = root
        for part, nxt in zip(parts, [*parts[1:], None], strict=True):
            container: Any = [] if nxt == "" or (nxt is not None and nxt.isdigit()) else {}
            if isinstance(node, dict):
                if nxt is None:
                    node[part] = value
                else:
                    node = node.setdefault(part, container)
            elif isinstance(node, list):
                if part == "":
                    if nxt is None:
                        node.append(value)
                        continue
                    node.append(container)
                    node = node[-1]
                    continue
                index = int(part)
                if index > 1000:
                    raise MalformedBody(f"Form field {raw_key!r} has too large an index.")
                while len(node) <= index:
                    node.append({} if nxt is not None else None)
                if nxt is None:
                    node[index] = value
                else:
                    if not isinstance(node[index], dict | list):
                        node[index] = container
                    node = node[index]
            else:
                raise MalformedBody(f"Form field {raw_key!r} conflicts with another field.")
    return root


def decode_body(body: bytes, content_type: str, wire_type: type[T]) -> T:
    """Decode a JSON or form body into ``wire_type``; every failure is a 400 naming the field."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded" or (media == "" and body[:1] not in b"{["):
        data: Any = parse_form(body)
        try:
            converted = msgspec.convert(data, wire_type, strict=False)
        except msgspec.ValidationError as exc:
            raise validation_error(exc) from None
        if b"%00" in body or b"\x00" in body:
            reject_nul(converted)
        return converted
    if media not in ("", "application/json", "text/json") and not media.endswith("+json"):
        raise MalformedBody(
            f"Content-Type {media!r} is not supported; send application/json or "
            "application/x-www-form-urlencoded.",
            code="request.body.unsupported-media-type",
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

"""Form-encoded bodies (``application/x-www-form-urlencoded``) with bracket keys.

``a=1&b[c]=2&d[0][e]=3&f[]=x`` is the convention of curl ``-d`` examples and PHP/Rails
clients. It is read in two steps, so that the result never depends on the order of the pairs:

1. ``parse_form`` builds a tree keyed by the bracket segments *as strings* (``[]`` appends).
   Nothing is guessed yet: ``metadata[0]`` and ``metadata[x]`` are two keys of one node.
   A key given twice (``a=1&a=2``), or both as a value and as an object (``a=1&a[b]=2``), is
   recorded as a conflict: a 400 naming the field if the field is one we read (unknown fields
   are ignored, as in JSON bodies, conflicts in them included).
2. ``shape`` walks the tree along the wire type (a msgspec Struct, read with
   ``msgspec.inspect``). A node becomes a list only where the type has a list (``details``):
   its keys must then all be canonical indices (``0``, ``1``, ``10``; not ``01``, ``-1``,
   ``+1``) below the list's ``max_length``, taken in numeric order (``details[0]`` and
   ``details[5]`` are the first and second item, and errors name them ``details[0]`` and
   ``details[1]``), or all ``[]`` appends, taken in the order sent (that order is their
   meaning); mixing the two is a 400. Where the type wants an object (metadata, free-form
   JSON), numeric-looking keys stay string keys. Leaves are strings; where the type wants an
   integer or a boolean they are converted with the strict wire grammar (``settle.grammar``),
   never with msgspec's lax mode (which turns "1e3" into 1000 and "1.0" into 1).

The shaped value is then converted with ``msgspec.convert(..., strict=True)``, which checks
lengths, ranges and types exactly as for a JSON body.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Final
from urllib.parse import parse_qsl

import msgspec
import msgspec.inspect as mi

from settle import grammar
from settle.errors import ErrorCode, MalformedBody, ValidationError

MAX_DEPTH: Final = 16  # brackets in one key; the same bound as JSON nesting
MAX_FIELDS: Final = 2000  # pairs in one body
# Items of a list the wire type gives no max_length (none today): the pair count bounds it too.
DEFAULT_MAX_ITEMS: Final = 1000

CONFLICT_CODE: Final = ErrorCode.FORM_CONFLICT
INDEX_CODE: Final = ErrorCode.FORM_INVALID_INDEX

_KEY_RE: Final = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT_RE: Final = re.compile(r"\[([^\[\]]*)\]")
_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]*")


class Branch:
    """A node with children: ``keys`` from ``[name]`` segments, ``appended`` from ``[]``."""

    __slots__ = ("appended", "keys")

    def __init__(self) -> None:
        self.keys: dict[str, Node] = {}
        self.appended: list[Node] = []

    def __repr__(self) -> str:
        return f"Branch(keys={self.keys!r}, appended={self.appended!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Branch)
            and self.keys == other.keys
            and self.appended == other.appended
        )

    __hash__ = None  # type: ignore[assignment]


class Conflict:
    """A key given twice, or as a value and as an object: reported only if the field is read."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"Conflict({self.problem!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conflict) and self.problem == other.problem

    __hash__ = None  # type: ignore[assignment]


Node = str | Branch | Conflict

_TWICE: Final = "is given more than once"
_BOTH: Final = "is given both as a value and as an object"


def _pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody(f"The form body is not valid: {exc}.") from None


def _segments(raw_key: str) -> list[str]:
    match = _KEY_RE.fullmatch(raw_key)
    if match is None:
        raise MalformedBody(f"Form field name {raw_key[:100]!r} is not valid.")
    parts = [match.group(1), *_SEGMENT_RE.findall(match.group(2))]
    if len(parts) > MAX_DEPTH:
        raise MalformedBody(f"Form field {raw_key[:100]!r} is nested too deeply.")
    return parts


def _add(root: Branch, parts: list[str], value: str) -> None:
    node = root
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if part == "":  # ``[]``: a new item each time
            if i == last:
                node.appended.append(value)
                return
            child = Branch()
            node.appended.append(child)
            node = child
            continue
        existing = node.keys.get(part)
        if isinstance(existing, Conflict):
            return
        if i == last:
            if existing is None:
                node.keys[part] = value
            else:
                node.keys[part] = Conflict(_TWICE if isinstance(existing, str) else _BOTH)
            return
        if existing is None:
            child = Branch()
            node.keys[part] = child
            node = child
        elif isinstance(existing, Branch):
            node = existing
        else:
            node.keys[part] = Conflict(_BOTH)
            return


def parse_form(body: bytes) -> Branch:
    """The bracket tree of a form body (step 1 above). Malformed bodies are a 400."""
    root = Branch()
    for raw_key, value in _pairs(body):
        _add(root, _segments(raw_key), value)
    return root


# --- step 2: shape the tree along the wire type ---------------------------------------------


def _conflict(path: str, problem: str) -> ValidationError:
    return ValidationError(f"{path}: {problem}.", code=CONFLICT_CODE, field=path)


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _plain(node: Node, path: str) -> Any:
    """A node where any JSON value may go: objects keep their (string) keys, ``[]`` appends
    make arrays, leaves stay strings."""
    if isinstance(node, Conflict):
        raise _conflict(path, node.problem)
    if isinstance(node, str):
        return node
    if node.keys and node.appended:
        raise _conflict(path, "mixes [] items with named keys")
    if node.appended:
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(node.appended)]
    return {key: _plain(child, _child_path(path, key)) for key, child in node.keys.items()}


def _unwrap(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


_SCALARS: Final = (mi.StrType, mi.IntType, mi.BoolType)


def _choose(node: Node, union: mi.UnionType) -> mi.Type:
    """The member of ``X | None`` (or a wider union) a form node can be: forms have no null."""
    members = [_unwrap(m) for m in union.types if not isinstance(_unwrap(m), mi.NoneType)]
    if len(members) == 1:
        return members[0]
    want_scalar = isinstance(node, str)
    for member in members:
        if isinstance(member, _SCALARS) == want_scalar:
            return member
    return mi.AnyType()


def _list_items(node: Branch, t: mi.ListType, path: str) -> list[Node]:
    if node.keys and node.appended:
        raise _conflict(path, "mixes [] items with numbered items")
    bound = t.max_length if t.max_length is not None else DEFAULT_MAX_ITEMS
    if node.appended:
        items = node.appended
    else:
        for key in node.keys:
            if _INDEX_RE.fullmatch(key) is None:
                raise ValidationError(
                    f"{path}: {key[:40]!r} is not an item index; use {path}[0], {path}[1], "
                    f"... or {path}[].",
                    code=INDEX_CODE,
                    field=path,
                )
            if len(key) > len(str(bound - 1)) or int(key) >= bound:
                raise ValidationError(
                    f"{path}: index {key[:40]} is out of range; at most {bound} items.",
                    code=INDEX_CODE,
                    field=path,
                )
        # Canonical indices sort numerically by (length, text).
        items = [node.keys[k] for k in sorted(node.keys, key=lambda k: (len(k), k))]
    if len(items) > bound:
        raise ValidationError(f"{path}: must have at most {bound} items.", field=path)
    return items


def shape(node: Node, t: mi.Type, path: str = "") -> Any:
    """The value ``msgspec.convert(..., strict=True)`` should see for ``node`` as type ``t``."""
    if isinstance(node, Conflict):
        raise _conflict(path or "body", node.problem)
    t = _unwrap(t)
    if isinstance(t, mi.UnionType):
        t = _choose(node, t)
    if isinstance(node, str):
        if isinstance(t, mi.IntType):
            lowest = t.ge if t.ge is not None else None if t.gt is None else t.gt + 1
            signed = lowest is None or lowest < 0  # a sign only where negatives are allowed
            return grammar.parse_integer(node, field=path, signed=signed)
        if isinstance(t, mi.BoolType):
            return grammar.parse_boolean(node, field=path)
        if isinstance(t, mi.RawType):  # read later as its JSON (a VAT rate): a JSON string
            return msgspec.Raw(msgspec.json.encode(node))
        # Strings stay strings; where the type wants anything else (an object, an array, a
        # number) strict conversion refuses them, naming the field.
        return node
    if isinstance(t, mi.StructType):
        if node.appended:
            return _plain(node, path)  # an array where an object is wanted: refused
        return {
            f.encode_name: shape(node.keys[f.encode_name], f.type, _child_path(path, f.encode_name))
            for f in t.fields
            if f.encode_name in node.keys
        }
    if isinstance(t, mi.ListType):
        items = _list_items(node, t, path)
        return [shape(item, t.item_type, f"{path}[{i}]") for i, item in enumerate(items)]
    if isinstance(t, mi.DictType):
        if node.appended:
            return _plain(node, path)
        return {
            key: shape(child, t.value_type, _child_path(path, key))
            for key, child in node.keys.items()
        }
    return _plain(node, path)


@cache
def type_info(wire_type: type) -> mi.Type:
    return mi.type_info(wire_type)


def form_value(body: bytes, wire_type: type) -> Any:
    """The form body as the plain value to convert into ``wire_type`` (steps 1 and 2)."""
    return shape(parse_form(body), type_info(wire_type))

"""Cards: checked, handed to the gateway's vault, and kept without their number or CVC.

What Settle keeps of a card is what may be shown: scheme, IIN (first six digits), last four,
expiry, name, and a fingerprint (SHA-256 of the project and the number) that tells the same
card again within a project. The number and CVC exist only in the request that carried them
and in the gateway's vault; they are never stored, logged or answered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from settle.clock import now_us
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.db.queries import Part, scoped_row, scoped_rows
from settle.errors import ErrorCode, NotFoundError, invalid
from settle.ids import new_id
from settle.listing import PageQuery, fetch_page
from settle.payments.gateway import CardData
from settle.payments.models import Card
from settle.projects.models import Scope

_COLUMNS: Final = (
    "id, project_id, sandbox, scheme, type, iin, last_4_digits, exp_month, exp_year, name,"
    " fingerprint, cvc_check, avs_check, gateway_name, gateway_reference, metadata, created_at,"
    " anonymized_at"
)
# IIN prefixes -> scheme, longest prefix first wins (ISO/IEC 7812 ranges of the big schemes).
_SCHEMES: Final = (
    (("34", "37"), "american express"),
    (("300", "301", "302", "303", "304", "305", "36", "38"), "diners club"),
    (("6011", "65", "644", "645", "646", "647", "648", "649"), "discover"),
    (("3528", "3529", "353", "354", "355", "356", "357", "358"), "jcb"),
    (tuple(str(n) for n in range(51, 56)) + tuple(str(n) for n in range(2221, 2721)), "mastercard"),
    (("4",), "visa"),
)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def scheme_of(number: str) -> str:
    best, found = "", "unknown"
    for prefixes, scheme in _SCHEMES:
        for prefix in prefixes:
            if number.startswith(prefix) and len(prefix) > len(best):
                best, found = prefix, scheme
    return found


def check_card(card: CardData, *, today: datetime | None = None) -> CardData:
    """Number (digits, spaces and dashes allowed, 12-19 digits, Luhn), expiry (not past; a
    two-digit year is 20YY) and CVC (3 or 4 digits) checked; the number normalised. Messages
    never repeat the number."""
    number = card.number.replace(" ", "").replace("-", "")
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19):
        raise invalid("number", "must be 12 to 19 digits.", ErrorCode.INVALID_CARD_NUMBER)
    if not luhn_ok(number):
        raise invalid("number", "is not a valid card number.", ErrorCode.INVALID_CARD_NUMBER)
    year = card.exp_year + 2000 if 0 <= card.exp_year < 100 else card.exp_year
    if not 1 <= card.exp_month <= 12:
        raise invalid("exp_month", "must be 1 to 12.", ErrorCode.INVALID_CARD_EXPIRY)
    now = today or datetime.now(UTC)
    if not now.year <= year <= now.year + 50 or (year == now.year and card.exp_month < now.month):
        raise invalid("exp_year", "the card has expired.", ErrorCode.INVALID_CARD_EXPIRY)
    cvc = card.cvc
    if (
        cvc is not None
        and cvc != ""
        and not (cvc.isascii() and cvc.isdigit() and 3 <= len(cvc) <= 4)
    ):
        raise invalid("cvc2", "must be 3 or 4 digits.", ErrorCode.INVALID_CARD_CVC)
    return CardData(
        number=number, exp_month=card.exp_month, exp_year=year, cvc=cvc or None, name=card.name
    )


def new_card(
    scope: Scope,
    card: CardData,
    *,
    gateway_name: str,
    gateway_reference: str,
    metadata: dict[str, str],
) -> Card:
    """The card Settle keeps for ``card`` (already checked and vaulted)."""
    number = card.number
    return Card(
        id=new_id("card_"),
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        scheme=scheme_of(number),
        type="credit",
        iin=number[:6],
        last_4_digits=number[-4:],
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        name=card.name,
        fingerprint=hashlib.sha256(f"{scope.project_id}:{number}".encode()).hexdigest(),
        cvc_check="unchecked" if card.cvc else "unavailable",
        avs_check="unchecked",
        gateway_name=gateway_name,
        gateway_reference=gateway_reference,
        metadata=metadata,
        created_at=now_us(),
    )


def _from_row(row: Row) -> Card:
    return Card(
        id=row["id"],
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        scheme=row["scheme"],
        type=row["type"],
        iin=row["iin"],
        last_4_digits=row["last_4_digits"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
        name=row["name"],
        fingerprint=row["fingerprint"],
        cvc_check=row["cvc_check"],
        avs_check=row["avs_check"],
        gateway_name=row["gateway_name"],
        gateway_reference=row["gateway_reference"],
        metadata=load_json(row["metadata"]) or {},
        created_at=row["created_at"],
        anonymized_at=row["anonymized_at"],
    )


async def insert_card(tx: Tx, card: Card) -> None:
    await tx.execute(
        f"INSERT INTO cards ({_COLUMNS}) VALUES"
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        card.id,
        card.project_id,
        card.sandbox,
        card.scheme,
        card.type,
        card.iin,
        card.last_4_digits,
        card.exp_month,
        card.exp_year,
        card.name,
        card.fingerprint,
        card.cvc_check,
        card.avs_check,
        card.gateway_name,
        card.gateway_reference,
        dump_json(card.metadata),
        card.created_at,
        card.anonymized_at,
    )


def card_part(where: str) -> Part:
    """The card that ``where`` finds (a condition on ``cards c``), as a part of a
    ``settle.db.queries.union_of`` statement (read back with ``from_part``)."""
    names = tuple(c.strip() for c in _COLUMNS.split(","))
    return Part(names, tuple(f"c.{c}" for c in names), ("cards c",), f"FROM cards c WHERE {where}")


def from_part(rows: list[dict[str, Any]]) -> Card | None:
    """The card of ``card_part``'s rows (None: none was found)."""
    return _from_row(rows[0]) if rows else None


async def get_card(tx: Tx, scope: Scope, card_id: str, *, lock: Lock = Lock.NONE) -> Card:
    row = await scoped_row(tx, "cards", _COLUMNS, scope, card_id, lock=lock)
    if row is None:
        raise NotFoundError("card", card_id)
    return _from_row(row)


async def get_cards(tx: Tx, scope: Scope, card_ids: Iterable[str]) -> dict[str, Card]:
    """Several cards in one statement, scoped; ids of other projects are absent."""
    rows = await scoped_rows(tx, "cards", _COLUMNS, scope, card_ids)
    return {r["id"]: _from_row(r) for r in rows}


async def list_cards(tx: Tx, scope: Scope, query: PageQuery) -> tuple[list[Card], bool]:
    rows, has_more, _ = await fetch_page(
        tx, table="cards", columns=_COLUMNS, scope=scope, query=query
    )
    return [_from_row(r) for r in rows], has_more


async def record_checks(tx: Tx, card_id: str, cvc_check: str | None, avs_check: str | None) -> None:
    """What the gateway said of the card's CVC and address at an authorization. Written only
    when it differs: one card may pay many invoices at once (a customer's saved card), and an
    unconditional UPDATE would queue every one of their authorizations on this row's lock
    (measured on PostgreSQL: 306 authorizations/s with one shared card)."""
    await tx.execute(
        "UPDATE cards SET cvc_check = COALESCE($2, cvc_check), avs_check = COALESCE($3, avs_check)"
        " WHERE id = $1 AND ((CAST($2 AS TEXT) IS NOT NULL AND cvc_check <> $2)"
        " OR (CAST($3 AS TEXT) IS NOT NULL AND avs_check <> $3))",
        card_id,
        cvc_check,
        avs_check,
    )


async def anonymize_card(tx: Tx, scope: Scope, card_id: str) -> None:
    """Forget what identifies the card holder: the name, the fingerprint and the vault
    reference go (the card can no longer be charged); scheme and last four stay for the
    history of the payments made with it."""
    await get_card(tx, scope, card_id, lock=Lock.UPDATE)
    await tx.execute(
        "UPDATE cards SET name = NULL, fingerprint = '', gateway_reference = NULL,"
        " anonymized_at = COALESCE(anonymized_at, $2) WHERE id = $1",
        card_id,
        now_us(),
    )

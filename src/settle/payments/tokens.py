"""Customer tokens: a customer's saved card, chargeable again by that customer only.

A token belongs to one customer of one project and mode; it is found only through its
customer (``/customers/{id}/tokens/{tid}``), and a source naming it is refused for any other
customer's invoice. The customer's default token is the customer's ``default_token_id``.
"""

from __future__ import annotations

from typing import Final

from settle.clock import now_us
from settle.customers import service as customers
from settle.db.codec import dump_json, load_json
from settle.db.database import Lock, Row, Tx
from settle.errors import NotFoundError
from settle.ids import could_exist, new_id
from settle.listing import PageQuery, fetch_page
from settle.payments.models import Token
from settle.projects.models import Scope

_COLUMNS: Final = (
    "id, project_id, sandbox, customer_id, card_id, description, metadata, created_at, deleted_at"
)
_ALIVE: Final = "deleted_at IS NULL"


def _from_row(row: Row, default_token_id: str | None) -> Token:
    return Token(
        id=row["id"],
        project_id=row["project_id"],
        sandbox=bool(row["sandbox"]),
        customer_id=row["customer_id"],
        card_id=row["card_id"],
        description=row["description"],
        metadata=load_json(row["metadata"]) or {},
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
        is_default=row["id"] == default_token_id,
    )


def new_token(
    scope: Scope,
    *,
    customer_id: str,
    card_id: str,
    description: str | None,
    metadata: dict[str, str],
) -> Token:
    return Token(
        id=new_id("tok_"),
        project_id=scope.project_id,
        sandbox=scope.sandbox,
        customer_id=customer_id,
        card_id=card_id,
        description=description,
        metadata=metadata,
        created_at=now_us(),
    )


async def insert_token(tx: Tx, token: Token) -> None:
    await tx.execute(
        f"INSERT INTO tokens ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        token.id,
        token.project_id,
        token.sandbox,
        token.customer_id,
        token.card_id,
        token.description,
        dump_json(token.metadata),
        token.created_at,
        token.deleted_at,
    )


async def _default_of(tx: Tx, customer_id: str) -> str | None:
    found = await tx.fetchval("SELECT default_token_id FROM customers WHERE id = $1", customer_id)
    return found if isinstance(found, str) else None


async def get_token(
    tx: Tx, scope: Scope, customer_id: str, token_id: str, *, lock: Lock = Lock.NONE
) -> Token:
    """The live token ``token_id`` of ``customer_id``, in ``scope`` only."""
    if not could_exist(token_id):
        raise NotFoundError("token", token_id)
    row = await tx.fetchrow(
        f"SELECT {_COLUMNS} FROM tokens WHERE id = $1 AND customer_id = $2"
        f" AND project_id = $3 AND sandbox = $4 AND {_ALIVE}",
        token_id,
        customer_id,
        scope.project_id,
        scope.sandbox,
        lock=lock,
    )
    if row is None:
        raise NotFoundError("token", token_id)
    return _from_row(row, await _default_of(tx, customer_id))


async def list_tokens(
    tx: Tx, scope: Scope, customer_id: str, query: PageQuery
) -> tuple[list[Token], bool]:
    rows, has_more, _ = await fetch_page(
        tx,
        table="tokens",
        columns=_COLUMNS,
        scope=scope,
        query=query,
        live=f"{_ALIVE} AND customer_id = '{customer_id}'"
        if customer_id.isalnum() or "_" in customer_id
        else _ALIVE,
    )
    default = await _default_of(tx, customer_id)
    return [_from_row(r, default) for r in rows if r["customer_id"] == customer_id], has_more


async def set_default(tx: Tx, scope: Scope, customer_id: str, token_id: str | None) -> None:
    await customers.set_default_token(tx, scope, customer_id, token_id)


async def delete_token(tx: Tx, scope: Scope, customer_id: str, token_id: str) -> None:
    token = await get_token(tx, scope, customer_id, token_id, lock=Lock.UPDATE)
    await tx.execute("UPDATE tokens SET deleted_at = $2 WHERE id = $1", token.id, now_us())
    if token.is_default:
        await set_default(tx, scope, customer_id, None)

"""ProcessOut card and customer-token endpoints.

A card's number and CVC go from the request to the gateway's vault (outside any database
transaction: the vault is the gateway's, a network call) and nowhere else; what the answer and
the database hold is what may be shown (scheme, IIN, last four, expiry).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from settle import grammar
from settle.api.processout import render
from settle.api.processout import schemas as wire
from settle.api.processout.base import expands, ok, page_query, start
from settle.customers import service as customers
from settle.db.database import Lock, Tx
from settle.errors import ErrorCode, invalid
from settle.payments import cards, tokens
from settle.payments.gateway import CardData

TOKEN_EXPANDS: Final = ("card",)  # a token list shows each token's card when asked


def _month_or_year(value: int | str | None, field: str) -> int:
    if value is None:
        raise invalid(field, "is required.", ErrorCode.INVALID_CARD_EXPIRY)
    if isinstance(value, int):
        return value
    return grammar.parse_integer(value, field=field)


async def create_card(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.CardIn)
    if not body.number:
        raise invalid("number", "is required.", ErrorCode.INVALID_CARD_NUMBER)
    data = cards.check_card(
        CardData(
            number=body.number,
            exp_month=_month_or_year(body.exp_month, "exp_month"),
            exp_year=_month_or_year(body.exp_year, "exp_year"),
            cvc=body.cvc2,
            name=body.name,
        )
    )
    replay = await call.replayed()
    if replay is not None:
        return replay  # the card is in the vault already: not a second time
    gateway = call.runtime.gateway
    vaulted = await gateway.vault(data)
    card = cards.new_card(
        call.scope,
        data,
        gateway_name=gateway.name,
        gateway_reference=vaulted.reference,
        metadata=body.metadata or {},
    )
    del data  # the number and CVC go no further

    async def perform(tx: Tx) -> Response:
        await cards.insert_card(tx, card)
        return ok(card=render.card(card))

    return await call.write(perform)


async def list_cards(request: Request) -> Response:
    call = await start(request)
    query = page_query(request)
    async with call.read() as tx:
        items, has_more = await cards.list_cards(tx, call.scope, query)
    return ok(cards=[render.card(c) for c in items], has_more=has_more)


async def find_card(request: Request) -> Response:
    call = await start(request)
    async with call.read(one_statement=True) as tx:
        card = await cards.get_card(tx, call.scope, request.path_params["card_id"])
    return ok(card=render.card(card))


async def anonymize_card(request: Request) -> Response:
    call = await start(request)

    async def perform(tx: Tx) -> Response:
        await cards.anonymize_card(tx, call.scope, request.path_params["card_id"])
        return ok()

    return await call.write(perform)


# --- customer tokens --------------------------------------------------------------------------


async def create_token(request: Request) -> Response:
    call = await start(request)
    body = await call.body(wire.TokenIn)
    customer_id = request.path_params["customer_id"]
    if not body.source:
        raise invalid("source", "is required: the id of a card to save for the customer.")
    source = body.source

    async def perform(tx: Tx) -> Response:
        await customers.get_customer(tx, call.scope, customer_id, lock=Lock.UPDATE)
        card = await cards.get_card(tx, call.scope, source)
        if card.anonymized_at is not None:
            raise invalid("source", "the card was anonymized.", ErrorCode.TOKEN_NOT_USABLE)
        token = tokens.new_token(
            call.scope,
            customer_id=customer_id,
            card_id=card.id,
            description=body.description,
            metadata=body.metadata or {},
        )
        await tokens.insert_token(tx, token)
        if body.set_default:
            await tokens.set_default(tx, call.scope, customer_id, token.id)
        token = await tokens.get_token(tx, call.scope, customer_id, token.id)
        return ok(token=render.token(token, card), customer_action=None)

    return await call.write(perform)


async def list_tokens(request: Request) -> Response:
    call = await start(request)
    query = page_query(request)
    customer_id = request.path_params["customer_id"]
    expand = expands(request, TOKEN_EXPANDS)
    async with call.read() as tx:
        await customers.get_customer(tx, call.scope, customer_id)
        items, has_more = await tokens.list_tokens(tx, call.scope, customer_id, query)
        # Read even when not expanded: whether a token can be charged is its card's state.
        found = await cards.get_cards(tx, call.scope, (t.card_id for t in items))
    return ok(
        tokens=[render.token(t, found.get(t.card_id), with_card="card" in expand) for t in items],
        has_more=has_more,
    )


async def find_token(request: Request) -> Response:
    call = await start(request)
    params = request.path_params
    async with call.read() as tx:
        token = await tokens.get_token(tx, call.scope, params["customer_id"], params["token_id"])
        card = await cards.get_card(tx, call.scope, token.card_id)
    return ok(token=render.token(token, card))


async def update_token(request: Request) -> Response:
    """The official client's Token.save(): only ``set_default`` changes anything here."""
    call = await start(request)
    body = await call.body(wire.TokenIn)
    params = request.path_params

    async def perform(tx: Tx) -> Response:
        customer_id = params["customer_id"]
        await customers.get_customer(tx, call.scope, customer_id, lock=Lock.UPDATE)
        token = await tokens.get_token(tx, call.scope, customer_id, params["token_id"])
        if body.set_default:
            await tokens.set_default(tx, call.scope, customer_id, token.id)
        return ok()

    return await call.write(perform)


async def delete_token(request: Request) -> Response:
    call = await start(request)
    params = request.path_params

    async def perform(tx: Tx) -> Response:
        customer_id = params["customer_id"]
        await customers.get_customer(tx, call.scope, customer_id, lock=Lock.UPDATE)
        await tokens.delete_token(tx, call.scope, customer_id, params["token_id"])
        return ok()

    return await call.write(perform)

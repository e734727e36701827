"""A customer's saved cards as Reepay payment methods (``ca_`` ids).

A Reepay payment method is the domain's customer token (``settle.payments.tokens``, the
ProcessOut face's ``tok_``): one stored object, two names. Its ``ca_`` id is the token's id
with the other prefix (``tok_X`` is ``ca_X``), so no second table or mapping is needed and a
card saved through either face pays through both.

Adding one, sandbox only: ``POST /v1/customer/{handle}/payment_method`` with a card number
(the sandbox gateway's test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is
declined, ...; ``settle.payments.sandbox.TEST_CARDS``). The vendor adds cards through its
hosted card form, which Settle does not have; live projects are refused. As for ProcessOut
cards, the number and CVC go to the gateway's vault and nowhere else: not stored, logged or
answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.reepay import ops_schemas as wire
from settle.api.reepay.base import find_customer, json_response, path_ref, start
from settle.api.reepay.render import handle_of_customer
from settle.clock import rfc3339
from settle.db.database import Lock, Tx
from settle.errors import ErrorCode, NotFoundError, SettleError
from settle.listing import PageQuery
from settle.payments import cards, tokens
from settle.payments.gateway import CardData
from settle.payments.models import Card, Token

PREFIX: Final = "ca_"
_TOKEN_PREFIX: Final = "tok_"  # noqa: S105 (an id prefix, not a secret)
# The card schemes Settle knows -> the vendor's card_type names.
CARD_TYPES: Final[dict[str, str]] = {
    "visa": "visa",
    "mastercard": "mc",
    "american express": "amex",
    "diners club": "diners",
    "discover": "discover",
    "jcb": "jcb",
}
# What the vendor calls the sandbox gateway's cards' provider.
PROVIDER: Final = "test"


def method_id(token_id: str) -> str:
    return PREFIX + token_id.removeprefix(_TOKEN_PREFIX)


def token_id(ref: str) -> str:
    """The token a ``ca_`` id names (or a ``tok_`` id: the same token, as the ProcessOut face
    names it); a reference of no other shape names no payment method."""
    if ref.startswith(_TOKEN_PREFIX) and len(ref) > len(_TOKEN_PREFIX):
        return ref
    if not ref.startswith(PREFIX) or len(ref) == len(PREFIX):
        raise NotFoundError("token", ref[:60])
    return _TOKEN_PREFIX + ref.removeprefix(PREFIX)


@contextmanager
def named(ref: str | None) -> Iterator[None]:
    """A token not found is reported by the name the client gave it (its ``ca_`` id)."""
    try:
        yield
    except NotFoundError as exc:
        if exc.kind != "token" or ref is None:
            raise
        raise NotFoundError("token", ref[:60]) from None


def card_facts(card: Card) -> dict[str, Any]:
    """What may be shown of a card: its type, masked number (first six, last four), expiry."""
    return {
        "card_type": CARD_TYPES.get(card.scheme, "unknown"),
        "exp_date": f"{card.exp_month:02d}-{card.exp_year % 100:02d}",
        "masked_card": f"{card.iin[:6]}XXXXXX{card.last_4_digits}",
        "fingerprint": card.fingerprint,
    }


def render(token: Token, card: Card, customer_handle: str) -> dict[str, Any]:
    """The vendor's ``Card`` object."""
    out: dict[str, Any] = {
        "id": method_id(token.id),
        "state": "active" if card.anonymized_at is None else "inactivated",
        "customer": customer_handle,
        "created": rfc3339(token.created_at),
        # The gateway's reference to the card: Settle's card id (the vault's own reference
        # stays inside Settle).
        "gw_ref": card.id,
    }
    out.update(card_facts(card))
    return out


async def create_payment_method(request: Request) -> Response:
    call = await start(request)
    customer_ref = path_ref(request, "handle", "customer")
    body = await call.body(wire.CreatePaymentMethod)
    data = cards.check_card(
        CardData(
            number=body.number,
            exp_month=body.exp_month,
            exp_year=body.exp_year,
            cvc=body.cvc,
            name=body.name,
        )
    )
    async with call.read() as tx:  # no card goes to the vault for a customer that is not
        await find_customer(tx, call.scope, customer_ref)
    if not call.scope.sandbox:
        raise SettleError(
            "Payment methods are added with test card numbers, in sandbox projects only.",
            code=ErrorCode.SANDBOX_ONLY,
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
        metadata={},
    )
    del data  # the number and CVC go no further

    async def perform(tx: Tx) -> Response:
        customer = await find_customer(tx, call.scope, customer_ref, lock=Lock.UPDATE)
        await cards.insert_card(tx, card)
        token = tokens.new_token(
            call.scope, customer_id=customer.id, card_id=card.id, description=None, metadata={}
        )
        await tokens.insert_token(tx, token)
        return json_response(render(token, card, handle_of_customer(customer)))

    return await call.write(perform)


async def list_payment_methods(request: Request) -> Response:
    """The customer's active saved cards, newest first, as the vendor's ``cards`` list."""
    call = await start(request)
    customer_ref = path_ref(request, "handle", "customer")
    async with call.read() as tx:
        customer = await find_customer(tx, call.scope, customer_ref)
        found, _ = await tokens.list_tokens(tx, call.scope, customer.id, PageQuery(limit=100))
        by_id = await cards.get_cards(tx, call.scope, (t.card_id for t in found))
    handle = handle_of_customer(customer)
    return json_response(
        {"cards": [render(t, by_id[t.card_id], handle) for t in found if t.card_id in by_id]}
    )

"""Concurrent writes to one object: the outcome is that of one serial order, and answers are true.

Generated from the route tables of both dialects (ProcessOut's, and Reepay's under ``/v1``,
authenticated with the private key): every route whose methods include POST, PUT, PATCH or
DELETE and whose path names an object (``{invoice_id}``, ``{customer_id}``, ``{handle}``, ...)
is a write on that object. A new write route joins by registering
(``test_every_write_route_is_registered`` fails, saying what to add, until it is):

- ``VARIANTS[(method, path)]``: the ``(label, body)`` variants to race (``None``: no body), or
  ``(label, body, kind)`` to race it on objects of another kind than its path parameters'
  default (``DEFAULT_KIND``): payments race on invoices in the state that makes them
  meaningful (captures on an authorized invoice, refunds on a captured one);
- a kind in ``KINDS`` if the object kind is new: the requests that make a fresh one (an object
  is the ids they took: a token is its customer's id and its own), and the GETs (with
  expansions) that show everything a write on it affects;
- or, for a write without an object id (a create), ``CREATES[(method, path)]``.

**Pair races.** For every pair of registered writes on one kind of object (a write paired with
itself included), ``ROUNDS`` rounds of: make a fresh object, send A and B to it at once (each on
its own keep-alive connection, taken before either is written, then written back to back; with
2 workers, through different workers), and read its final state ("404" for a deleted object);
and, on ``SERIAL_RUNS`` more fresh objects each, apply A then B, and B then A (a serial order is
deterministic: its runs must agree). The server is its own oracle: the concurrent outcome
(answer to A, answer to B, final state) must equal the outcome of one of the two serial orders,
compared after normalising what differs between any two identical runs (ids of objects the
requests made, the gateway's references, timestamps, versions, error messages); status codes,
error types and every other value must match exactly. A payment refused because another
operation on the transaction is in flight (``RETRYABLE``: "retry once it is done") is sent again
once both are answered, as a client would: the outcome must then be that of the order it made.

**Keyed retries.** For every write route (creates too): ``KEYED_COPIES`` identical requests with
one Idempotency-Key at once must get identical answers (status and body), all but one marked
``Idempotent-Replayed: true``, with the effect of the request applied once (compared with a
fresh object the request was applied to once, without a key; for a create, one more row). A
payment's key is claimed until the gateway has answered: copies refused meanwhile as in progress
are sent again once all are answered, and must then replay the one answer.

Both backends x 1 and 2 worker processes (``settle serve --workers N`` child processes, one per
configuration for the module). ``SETTLE_RACE_ROUNDS`` and ``SETTLE_RACE_KEYED_ROUNDS`` change
the number of rounds for a longer soak; ``pytest -s`` shows one summary line per configuration.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from settle.api.processout.routes import ROUTES as PROCESSOUT_ROUTES
from settle.api.reepay.routes import ROUTES as REEPAY_ROUTES
from tests.concurrency import CONFIGS, Client, Reply, Target, gather_limited, serve
from tests.dbcheck import query

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SETTLE_RACE_ROUNDS", "12"))
KEYED_ROUNDS = int(os.environ.get("SETTLE_RACE_KEYED_ROUNDS", "4"))
# Each serial order is applied to this many fresh objects per pair (not once per round: it is
# deterministic, and runs that disagree fail the pair), which halves the objects made.
SERIAL_RUNS = 2
KEYED_COPIES = 8
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SHOWN_ROUNDS = 3  # rounds described in full in a failure message

# Each dialect's routes, under the prefix it is mounted at.
TABLES: tuple[tuple[str, list[Any]], ...] = (("", PROCESSOUT_ROUTES), ("/v1", REEPAY_ROUTES))

Body = dict[str, Any] | None
CUSTOMER = "$customer"  # in a body: a customer of the same project (made once per server)
CARD = "$card"  # in a body: a card of the same project that pays (made once per server)
# In a body: a captured invoice of the same project with much left to refund (made once).
SETTLED = "$settled"
# In a body: that customer's saved card as a Reepay payment method (ca_).
REEPAY_PM = "$reepay_pm"
# In a body: a new handle each time the body is sent (an id-like one, so that outcomes compare
# alike once normalised); ``{param}`` in a body's text: that id of the object written to.
UNIQUE = "$unique"


@dataclass(frozen=True)
class Step:
    """One request of an object's making: ``path`` may name the ids taken by earlier steps
    (``/invoices/{invoice_id}/authorize``); ``takes`` names the ids this answer gives, by
    their dotted place in it (``{"invoice_id": "invoice.id"}``)."""

    method: str
    path: str
    body: Body
    takes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """A kind of object, in one state: the requests that make a fresh one (each answered
    200), and the GETs (with expansions) that show everything a write on it affects. An
    object is the ids its steps took: path parameter -> id."""

    name: str
    steps: tuple[Step, ...]
    reads: tuple[tuple[str, dict[str, str]], ...]  # (path naming the ids, query)
    dialect: str = "processout"  # whose authentication its requests carry

    @property
    def params(self) -> frozenset[str]:
        return frozenset(p for step in self.steps for p in step.takes)


INVOICE_BODY: dict[str, Any] = {
    "name": "race",
    "amount": "2.00",
    "currency": "EUR",
    "details": [{"name": "a", "amount": "2.00"}],
}
MAKE_INVOICE = Step(
    "POST",
    "/invoices",
    INVOICE_BODY,
    {"invoice_id": "invoice.id", "transaction_id": "invoice.transaction_id"},
)
READ_INVOICE: tuple[tuple[str, dict[str, str]], ...] = (
    ("/invoices/{invoice_id}", {"expand": "transaction,customer"}),
)
MAKE_CUSTOMER = Step(
    "POST",
    "/customers",
    {"currency": "EUR", "balance": "1.00", "email": "race@example.com", "first_name": "Ra"},
    {"customer_id": "customer.id"},
)
READ_CUSTOMER: tuple[tuple[str, dict[str, str]], ...] = (
    ("/customers/{customer_id}", {}),
    ("/customers/{customer_id}/tokens", {}),
)

KINDS: dict[str, Kind] = {
    "invoice": Kind("invoice", (MAKE_INVOICE,), READ_INVOICE),
    # Payments race on invoices in the state that makes them meaningful.
    "authorized": Kind(
        "authorized invoice",
        (MAKE_INVOICE, Step("POST", "/invoices/{invoice_id}/authorize", {"source": CARD})),
        READ_INVOICE,
    ),
    "captured": Kind(
        "captured invoice",
        (MAKE_INVOICE, Step("POST", "/invoices/{invoice_id}/capture", {"source": CARD})),
        READ_INVOICE,
    ),
    "customer": Kind("customer", (MAKE_CUSTOMER,), READ_CUSTOMER),
    "token": Kind(
        "token",
        (
            MAKE_CUSTOMER,
            Step(
                "POST",
                "/customers/{customer_id}/tokens",
                {"source": CARD},
                {"token_id": "token.id"},
            ),
        ),
        READ_CUSTOMER,
    ),
    "card": Kind(
        "card",
        (
            Step(
                "POST",
                "/cards",
                {"number": "5555555555554444", "exp_month": 12, "exp_year": 2031, "name": "Ra"},
                {"card_id": "card.id"},
            ),
        ),
        (("/cards/{card_id}", {}),),
    ),
}
REEPAY_ORDER_LINES = [
    {"ordertext": "a", "amount": 1000, "quantity": 2, "vat": 0.25},
    {"ordertext": "b", "amount": 333, "quantity": 1, "vat": 0.25, "amount_incl_vat": False},
]
REEPAY_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
MAKE_REEPAY_CUSTOMER = Step(
    "POST", "/v1/customer", {"handle": UNIQUE, "email": "race@example.com"}, {"handle": "handle"}
)
READ_REEPAY_CUSTOMER: tuple[tuple[str, dict[str, str]], ...] = (
    ("/v1/customer/{handle}", {}),
    # The invoice the customer's creates race for (one handle: one invoice, code 11 for the
    # other).
    ("/v1/invoice/{handle}-iv", {}),
)
KINDS |= {
    # With an invoice made first: the worker that made it holds the customer's handle as a
    # hint (customers.HandleHints), so the races of a delete and an invoice also run the
    # invoice's hinted path, whose hold must fail as the lookup's would (71).
    "reepay-customer": Kind(
        "reepay customer",
        (
            MAKE_REEPAY_CUSTOMER,
            Step(
                "POST",
                "/v1/customer/{handle}/invoice",
                {"handle": UNIQUE, "order_lines": REEPAY_ORDER_LINES},
            ),
        ),
        READ_REEPAY_CUSTOMER,
        "reepay",
    ),
    "reepay-invoice": Kind(
        "reepay invoice",
        (
            Step("POST", "/v1/customer", {"handle": UNIQUE}, {"customer": "handle"}),
            Step(
                "POST",
                "/v1/customer/{customer}/invoice",
                {"handle": UNIQUE, "order_lines": REEPAY_ORDER_LINES, "metadata": {"k": "v"}},
                {"handle": "handle", "id": "id"},
            ),
        ),
        (("/v1/invoice/{id}", {}), ("/v1/invoice/{handle}/metadata", {})),
        "reepay",
    ),
    # Made by a create only (POST /v1/refund), and read back.
    "reepay-refund": Kind("reepay refund", (), (("/v1/refund/{refund}", {}),), "reepay"),
    # Made by a create only (POST /v1/charge), and read back.
    "reepay-charge-only": Kind("reepay charge", (), (("/v1/charge/{handle}", {}),), "reepay"),
    # An unpaid invoice of a customer with a saved card: what settle, manual settle, cancel,
    # fail and reactivate race on (each refuses what the other's state forbids).
    "reepay-payable": Kind(
        "reepay payable invoice",
        (
            Step("POST", "/v1/customer", {"handle": UNIQUE}, {"customer": "handle"}),
            Step("POST", "/v1/customer/{customer}/payment_method", REEPAY_CARD, {"pm": "id"}),
            Step(
                "POST",
                "/v1/customer/{customer}/invoice",
                {"handle": UNIQUE, "order_lines": REEPAY_ORDER_LINES},
                {"handle": "handle", "id": "id"},
            ),
        ),
        (("/v1/invoice/{id}", {}),),
        "reepay",
    ),
    # A failed one: what reactivate brings back.
    "reepay-failed": Kind(
        "reepay failed invoice",
        (
            Step("POST", "/v1/customer", {"handle": UNIQUE}, {"customer": "handle"}),
            Step(
                "POST",
                "/v1/customer/{customer}/invoice",
                {"handle": UNIQUE, "order_lines": REEPAY_ORDER_LINES},
                {"handle": "handle", "id": "id"},
            ),
            Step("POST", "/v1/invoice/{id}/fail", {}),
        ),
        (("/v1/invoice/{id}", {}),),
        "reepay",
    ),
    # A charge authorized on a saved card: settled (captured) or cancelled (voided) later.
    "reepay-charge": Kind(
        "reepay charge",
        (
            Step("POST", "/v1/customer", {"handle": UNIQUE}, {"customer": "handle"}),
            Step("POST", "/v1/customer/{customer}/payment_method", REEPAY_CARD, {"pm": "id"}),
            Step(
                "POST",
                "/v1/charge",
                {
                    "handle": UNIQUE,
                    "source": "{pm}",
                    "customer_handle": "{customer}",
                    "amount": 500,
                },
                {"handle": "handle"},
            ),
        ),
        (("/v1/charge/{handle}", {}),),
        "reepay",
    ),
}
# The kind a write route is raced on, by its path parameters, unless its variant names one.
DEFAULT_KIND: dict[tuple[str, ...], str] = {
    ("invoice_id",): "invoice",
    ("customer_id",): "customer",
    ("customer_id", "token_id"): "token",
    ("card_id",): "card",
}

Variant = tuple[str, Body] | tuple[str, Body, str]  # (label, body[, kind])

# Every write route on an object: the bodies raced, each with a short label (unique per kind),
# and the kind of object it is raced on if not its parameters' default.
VARIANTS: dict[tuple[str, str], list[Variant]] = {
    ("PUT", "/customers/{customer_id}"): [
        ("put-jpy15", {"currency": "JPY", "balance": "15"}),
        ("put-bal7.5", {"balance": "7.5"}),
        ("put-email", {"email": "x@example.com"}),
        # Refused while a balance exists and no new balance comes with it.
        ("put-usd", {"currency": "USD"}),
    ],
    ("DELETE", "/customers/{customer_id}"): [("delete", None)],
    ("POST", "/customers/{customer_id}/tokens"): [
        ("token-default", {"source": CARD, "set_default": True}),
    ],
    ("PUT", "/customers/{customer_id}/tokens/{token_id}"): [("set-default", {"set_default": True})],
    ("DELETE", "/customers/{customer_id}/tokens/{token_id}"): [("delete", None)],
    ("DELETE", "/cards/{card_id}"): [("anonymize", None)],
    ("PUT", "/invoices/{invoice_id}"): [
        ("put-3.45-details", {"amount": "3.45", "details": [{"amount": "3.45", "name": "a"}]}),
        ("put-1.45", {"amount": "1.45"}),
        ("put-tax", {"tax": {"amount": "0.10"}}),
    ],
    ("DELETE", "/invoices/{invoice_id}"): [("delete", None)],
    ("POST", "/invoices/{invoice_id}/customers"): [("assign", {"customer_id": CUSTOMER})],
    # On an unpaid invoice, against the changes above; each one refuses the other's moves.
    ("POST", "/invoices/{invoice_id}/authorize"): [("authorize", {"source": CARD})],
    ("POST", "/invoices/{invoice_id}/capture"): [
        # On an authorized invoice: all of the rest, or part (two parts exceed the whole).
        ("capture", {}, "authorized"),
        ("capture-1.50", {"capture_amount": "1.50"}, "authorized"),
        # A sale (authorize, then capture) of an unpaid one.
        ("sale", {"source": CARD}),
    ],
    ("POST", "/invoices/{invoice_id}/void"): [("void", {}, "authorized")],
    ("POST", "/invoices/{invoice_id}/increment_authorization"): [
        ("increment-1.00", {"amount": "1.00"}, "authorized"),
    ],
    ("POST", "/invoices/{invoice_id}/refunds"): [
        ("refund-1.50", {"amount": "1.50", "reason": "race"}, "captured"),
        # Nothing captured yet: refused, unless a capture came first.
        ("refund-1.00", {"amount": "1.00"}, "authorized"),
    ],
    # Of 2.00 captured: 1.50 and 1.00 (or 2.00) exceed it together, 1.00 twice does not.
    ("POST", "/transactions/{transaction_id}/refunds"): [
        ("tr-refund-1.00", {"amount": "1.00"}, "captured"),
        ("tr-refund-2.00", {"amount": "2.00", "information": "all"}, "captured"),
    ],
    # Reepay: ``{handle}`` names a customer or an invoice, so each variant names its kind.
    ("PUT", "/v1/customer/{handle}"): [
        ("put-email", {"email": "x@example.com", "first_name": "Ra"}, "reepay-customer"),
        ("put-company", {"company": "Race A/S", "country": "DK"}, "reepay-customer"),
    ],
    ("DELETE", "/v1/customer/{handle}"): [("delete", None, "reepay-customer")],
    # Both creates of a pair name one invoice handle: one invoice, code 11 for the other; a
    # deleted customer gets none (code 71).
    ("POST", "/v1/customer/{handle}/invoice"): [
        (
            "invoice",
            {"handle": "{handle}-iv", "order_lines": REEPAY_ORDER_LINES},
            "reepay-customer",
        ),
    ],
    ("PUT", "/v1/invoice/{handle}/metadata"): [
        ("put-metadata", {"a": "1", "b": "2"}, "reepay-invoice"),
    ],
    ("DELETE", "/v1/invoice/{handle}/metadata"): [("delete-metadata", None, "reepay-invoice")],
    ("PUT", "/v1/invoice/{id}/billing_address"): [
        ("billing", {"address": "Vej 1", "city": "Aarhus", "country": "DK"}, "reepay-invoice"),
    ],
    ("PUT", "/v1/invoice/{id}/shipping_address"): [
        ("shipping", {"address": "Gade 2", "city": "Odense"}, "reepay-invoice"),
    ],
    ("POST", "/v1/invoice/{id}/settle"): [("settle", {"payment_method": "auto"}, "reepay-payable")],
    ("POST", "/v1/invoice/{id}/settle/cancel"): [("settle-cancel", {}, "reepay-payable")],
    ("POST", "/v1/invoice/{id}/manual_settle"): [
        ("manual", {"method": "cash", "payment_date": "2026-01-02"}, "reepay-payable"),
    ],
    ("POST", "/v1/invoice/{id}/cancel"): [("cancel", {}, "reepay-payable")],
    ("POST", "/v1/invoice/{id}/fail"): [("fail", {}, "reepay-payable")],
    # First: the variant the keyed retries use (one that succeeds).
    ("POST", "/v1/invoice/{id}/reactivate"): [
        ("reactivate-failed", {}, "reepay-failed"),
        ("reactivate", {}, "reepay-payable"),
    ],
    ("POST", "/v1/customer/{handle}/payment_method"): [
        ("add-card", REEPAY_CARD, "reepay-customer"),
    ],
    ("POST", "/v1/charge/{handle}/settle"): [("charge-settle", {}, "reepay-charge")],
    ("POST", "/v1/charge/{handle}/cancel"): [("charge-cancel", {}, "reepay-charge")],
}


@dataclass(frozen=True)
class Create:
    body: dict[str, Any]
    table: str  # rows counted: one more per keyed request, however many copies
    kind: str  # the kind made (KINDS key), to read it back
    takes: dict[str, str]  # the ids of the object made, by their place in the answer


# Every write route without an object id.
CREATES: dict[tuple[str, str], Create] = {
    ("POST", "/invoices"): Create(
        {"name": "keyed", "amount": "4.20", "currency": "EUR", "customer_id": CUSTOMER},
        "invoices",
        "invoice",
        MAKE_INVOICE.takes,
    ),
    ("POST", "/customers"): Create(
        {"email": "keyed@example.com", "currency": "EUR", "balance": "3.00"},
        "customers",
        "customer",
        MAKE_CUSTOMER.takes,
    ),
    ("POST", "/cards"): Create(
        {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc2": "123"},
        "cards",
        "card",
        {"card_id": "card.id"},
    ),
    ("POST", "/v1/customer"): Create(
        {"handle": UNIQUE, "email": "keyed@example.com", "vat": "DK1234"},
        "customers",
        "reepay-customer",
        MAKE_REEPAY_CUSTOMER.takes,
    ),
    # A charge is an invoice of the shared customer, authorized on its saved card.
    ("POST", "/v1/charge"): Create(
        {"handle": UNIQUE, "source": REEPAY_PM, "customer_handle": CUSTOMER, "amount": 300},
        "invoices",
        "reepay-charge-only",
        {"handle": "handle"},
    ),
    # A refund is one more operation of the settled invoice's transaction.
    ("POST", "/v1/refund"): Create(
        {"invoice": SETTLED, "amount": 10, "text": "keyed"},
        "transaction_operations",
        "reepay-refund",
        {"refund": "id"},
    ),
}

# Writes this harness cannot race, for the reason given (and where they are tested instead).
NOT_RACED_HERE: dict[tuple[str, str], str] = {
    ("POST", "/events/{event_id}/webhooks"): (
        "sets the event's deliveries due again (twice is once: idempotent by design); a fresh "
        "object needs the delivery worker to have fanned the event out, which a kind's steps "
        "cannot wait for; tested in tests/api/processout/test_webhooks.py and tests/events"
    ),
    ("POST", "/v1/webhook/{id}/resend"): (
        "the same redelivery through the Reepay face, on a delivery row the worker makes "
        "after the change; tested in tests/api/reepay/test_deliveries.py and tests/events"
    ),
    ("PUT", "/v1/account/webhook_settings"): (
        "the project's one settings object, replaced whole by each PUT (the last writer wins "
        "in either order) and made by the first: a keyed copy makes no row after the first "
        "round; its answers are tested in tests/api/reepay/test_webhooks.py"
    ),
}

# An answer that says "retry once the operation in flight is done", and changed nothing:
# the request is sent again once the other one has been answered (a client would retry).
RETRYABLE = frozenset({"transaction.operation-in-progress", "request.idempotency-key.in-progress"})
# Reepay's code for both: 80 "Invoice processing".
REEPAY_RETRYABLE = frozenset({80})


# --- the route table ----------------------------------------------------------------------


def write_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, path parameters) of every write route, in table order."""
    found = []
    for prefix, routes in TABLES:
        for route in routes:
            if not isinstance(route, Route):  # checked in test_every_write_route_is_registered
                continue
            for method in sorted((route.methods or set()) & WRITE_METHODS):
                found.append((method, prefix + route.path, tuple(route.param_convertors)))
    return found


Obj = dict[str, str]  # path parameter -> id


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    kind: str  # KINDS key
    label: str
    body: Body

    def url(self, obj: Obj) -> str:
        return self.path.format_map(obj)

    def body_for(self, s: Racing, obj: Obj) -> Body:
        filled: Body = s.fill(self.body, obj)
        return filled

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)
        return f"{self.method} {self.path} [{self.label}]{body}"


def kind_of(variant: Variant, params: tuple[str, ...]) -> str | None:
    return variant[2] if len(variant) == 3 else DEFAULT_KIND.get(params)


def registered_ops() -> list[Op]:
    ops = []
    for method, path, params in write_routes():
        for variant in VARIANTS.get((method, path), []):
            kind = kind_of(variant, params)
            if kind in KINDS and set(params) <= KINDS[kind].params:
                ops.append(Op(method, path, kind, variant[0], variant[1]))
    return ops


def pairs() -> list[tuple[Op, Op]]:
    by_kind: dict[str, list[Op]] = {}
    for op in registered_ops():
        by_kind.setdefault(op.kind, []).append(op)
    return [pair for ops in by_kind.values() for pair in combinations_with_replacement(ops, 2)]


def pair_id(pair: tuple[Op, Op]) -> str:
    a, b = pair
    return f"{KINDS[a.kind].name.replace(' ', '-')}:{a.label}+{b.label}"


def keyed_routes() -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, params in write_routes()
        if (method, path) in (VARIANTS if params else CREATES)
    ]


def test_every_write_route_is_registered() -> None:
    problems = []
    seen: set[tuple[str, str]] = set()
    for _, routes in TABLES:
        for route in routes:
            if not isinstance(route, Route):
                problems.append(f"{route!r} is not a plain Route: teach test_races.py about it")
    for method, path, params in write_routes():
        seen.add((method, path))
        if (method, path) in NOT_RACED_HERE:
            continue
        if not params:
            if (method, path) not in CREATES:
                problems.append(
                    f"{method} {path} writes without an object id: register it in CREATES "
                    "(the body of one create, the table it adds a row to, the kind it makes)"
                )
            continue
        variants = VARIANTS.get((method, path))
        if not variants:
            problems.append(
                f"{method} {path} writes to an object but has no registered variants: add "
                f"VARIANTS[({method!r}, {path!r})] = [(label, body), ...] so it is raced "
                "against every other write on the same object"
            )
        for variant in variants or []:
            kind = kind_of(variant, params)
            if kind is None or kind not in KINDS:
                problems.append(
                    f"{method} {path} [{variant[0]}]: path parameter(s) {list(params)} name no "
                    "registered object kind: add one to KINDS (how to make a fresh object, how "
                    "to read its state) and DEFAULT_KIND, or name a kind in the variant"
                )
            elif not set(params) <= KINDS[kind].params:
                problems.append(
                    f"{method} {path} [{variant[0]}]: the kind {kind!r} gives no "
                    f"{sorted(set(params) - KINDS[kind].params)}"
                )
    for stale in (VARIANTS.keys() | CREATES.keys() | NOT_RACED_HERE.keys()) - seen:
        problems.append(f"{stale} is registered but is no write route of the table any more")
    labels = Counter(pair_id((op, op)) for op in registered_ops())
    problems += [f"label {name} is not unique" for name, n in labels.items() if n > 1]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --- normalising and comparing outcomes -------------------------------------------------------

# Settle's ids (a prefix and 32 alphanumerics) and the sandbox gateway's references
# ("sbx_" and 24 hex digits of the operation's random key).
_ID_RE = re.compile(r"\b([a-z]+(?:_[a-z]+)*)_(?:[0-9A-Za-z]{32}|(?<=sbx_)[0-9a-f]{24})\b")
_VOLATILE_KEYS = frozenset(
    {"created_at", "updated_at", "version"}
    | {f"{what}_at" for what in ("authorized", "captured", "voided", "refunded", "chargedback")}
    # Reepay's times (an invoice's, and its transactions': when each state was reached)
    | {"created", "due", "timestamp", "deleted", "settled", "cancelled", "failed", "authorized"}
    | {"reactivated", "refunded"}
)
# What an error body says beside its code that differs between two identical runs.
_ERROR_NOISE = frozenset({"message", "timestamp", "request_id"})

Wire = dict[str, Any]  # {"status": 200, "body": <JSON or text>}


def wire(response: Reply) -> Wire:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


class Normaliser:
    """Replaces ids by ``<kind#n>`` in order of first appearance (so the same id stays the same
    placeholder across the documents of one outcome), except the ids in ``stable``; drops
    timestamps, versions and error messages."""

    def __init__(self, stable: dict[str, str]) -> None:
        self.names = dict(stable)
        self.count = 0

    def _id(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if found not in self.names:
            self.names[found] = f"<{match.group(1)}#{self.count}>"
            self.count += 1
        return self.names[found]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _ID_RE.sub(self._id, value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            error = value.get("success") is False or "http_reason" in value  # either dialect's
            return {
                k: "<volatile>" if k in _VOLATILE_KEYS and v is not None else self(v)
                for k, v in value.items()
                if not (error and k in _ERROR_NOISE)
            }
        return value


def normalise(documents: dict[str, Wire], stable: dict[str, str]) -> dict[str, Wire]:
    norm = Normaliser(stable)
    return {name: norm(doc) for name, doc in documents.items()}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def differences(got: Any, want: Any, limit: int = 8) -> str:
    a, b = flatten(got), flatten(want)
    missing = object()
    diffs = [
        f"{path}: {a.get(path, missing)!r} (expected {b.get(path, missing)!r})"
        for path in sorted(a.keys() | b.keys())
        if a.get(path, missing) != b.get(path, missing)
    ]
    shown = "; ".join(diffs[:limit]).replace(repr(missing), "<absent>")
    return shown + (f"; ... {len(diffs) - limit} more" if len(diffs) > limit else "")


def status_of(doc: Wire) -> str:
    body = doc["body"]
    error = None
    if isinstance(body, dict):
        error = body.get("error_type") or (body.get("code") if "http_reason" in body else None)
    return f"{doc['status']}" + (f" {error}" if error else "")


def outcome_differences(got: dict[str, Wire], want: dict[str, Wire]) -> str:
    """Per document: its status if that differs, else the values of its body that differ."""
    parts = []
    for name in got:
        if status_of(got[name]) != status_of(want[name]):
            parts.append(f"{name} {status_of(got[name])} (expected {status_of(want[name])})")
        elif got[name] != want[name]:
            parts.append(f"{name}: {differences(got[name]['body'], want[name]['body'])}")
    return "; ".join(parts)


def headline(outcome: dict[str, Wire]) -> str:
    """``A 200, B 400 request.validation.invalid, final 404 ...``: the statuses at a glance."""
    return ", ".join(f"{name} {status_of(doc)}" for name, doc in outcome.items())


# --- the server, the shared objects ------------------------------------------------------------


@dataclass
class Stats:
    cases: int = 0  # pairs, or routes
    rounds: int = 0
    anomalies: int = 0  # rounds that went wrong
    across: int = 0  # rounds whose concurrent requests were answered by different workers
    retried: int = 0  # answers "in progress, retry" that were sent again (RETRYABLE)
    failed: dict[str, str] = field(default_factory=dict)  # case -> "anomalies/rounds"

    def line(self, what: str) -> str:
        per = f" ({what} x {self.rounds // self.cases} rounds)" if self.cases else ""
        failed = ", ".join(f"{case} {n}" for case, n in self.failed.items()) or "none"
        return (
            f"{self.cases} {what}{per}: {self.rounds} rounds run, {self.anomalies} anomalies,"
            f" {self.across} rounds across 2 workers, {self.retried} 'in progress' answers"
            f" retried; failing: {failed}"
        )


@dataclass
class Racing:
    target: Target
    fills: dict[str, str]  # placeholder -> id
    stable: dict[str, str]  # ids kept as they are in normalised outcomes
    races: Stats = field(default_factory=Stats)
    keyed: Stats = field(default_factory=Stats)

    def fill(self, value: Any, obj: Obj | None = None) -> Any:
        """``value`` with its placeholders filled in, for a request to the object ``obj``."""
        if isinstance(value, str):
            if value == UNIQUE:
                return f"race_{uuid.uuid4().hex}"
            if obj is not None and "{" in value:
                value = value.format_map(obj)
            return self.fills.get(value, value)
        if isinstance(value, list):
            return [self.fill(v, obj) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v, obj) for k, v in value.items()}
        return value

    def client(self, kind: Kind) -> Client:
        """A client authenticated in the dialect of ``kind``'s requests."""
        auth = self.target.reepay_auth if kind.dialect == "reepay" else None
        return self.target.client(auth=auth)


def shared_objects(c: httpx.Client) -> dict[str, str]:
    """The customer and the card the bodies name (placeholders -> ids). The card has paid
    once already, so that what a payment records of it (its checks) is settled before the
    races: it reads the same in every round."""
    made = c.post("/customers", json={"email": "shared@example.com"})
    assert made.status_code == 200, made.text
    card = c.post("/cards", json={"number": "4242424242424242", "exp_month": 12, "exp_year": 2031})
    assert card.status_code == 200, card.text
    card_id = card.json()["card"]["id"]
    invoice = c.post("/invoices", json=INVOICE_BODY).json()["invoice"]
    paid = c.post(f"/invoices/{invoice['id']}/capture", json={"source": card_id})
    assert paid.json()["transaction"]["status"] == "completed", paid.text
    big = c.post("/invoices", json={**INVOICE_BODY, "amount": "1000.00", "details": []})
    settled = big.json()["invoice"]["id"]
    paid = c.post(f"/invoices/{settled}/capture", json={"source": card_id})
    assert paid.json()["transaction"]["status"] == "completed", paid.text
    customer = made.json()["customer"]["id"]
    token = c.post(f"/customers/{customer}/tokens", json={"source": card_id})
    assert token.status_code == 200, token.text
    pm = "ca_" + token.json()["token"]["id"].removeprefix("tok_")
    return {CUSTOMER: customer, CARD: card_id, SETTLED: settled, REEPAY_PM: pm}


@pytest.fixture(scope="module", params=CONFIGS)
def racing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Racing]:
    backend, workers = request.param
    began = time.monotonic()
    tmp: Path = tmp_path_factory.mktemp(f"races-{backend}-{workers}w")
    with serve(backend, workers, tmp) as target:
        with httpx.Client(base_url=target.url, auth=target.auth, timeout=30) as c:
            fills = shared_objects(c)
        project_id = target.keys.project.id
        stable = {i: i for i in fills.values()}
        s = Racing(target, fills=fills, stable={**stable, project_id: project_id})
        yield s
    took = time.monotonic() - began
    print(f"\n[races {target.label}] pair races: {s.races.line('pairs')}", end="")
    print(f"\n[races {target.label}] keyed retries: {s.keyed.line('write routes')}", end="")
    print(f"\n[races {target.label}] {took:.1f} s, server start included")


def dig(body: Any, dotted: str) -> str:
    for part in dotted.split("."):
        body = body[part]
    assert isinstance(body, str), body
    return body


async def create(client: Client, s: Racing, kind: Kind) -> Obj:
    obj: Obj = {}
    for step in kind.steps:
        made = await client.request(
            step.method, step.path.format_map(obj), json=s.fill(step.body, obj)
        )
        # (Reepay answers the object itself, without ProcessOut's "success".)
        assert made.status_code == 200 and made.json().get("success", True) is True, made.text
        for param, dotted in step.takes.items():
            obj[param] = dig(made.json(), dotted)
    return obj


async def read(client: Client, kind: Kind, obj: Obj) -> Wire:
    """The object's state: its one GET's answer, or (several) each under its path."""
    docs = [wire(await client.get(path.format_map(obj), params=q)) for path, q in kind.reads]
    if len(docs) == 1:
        return docs[0]
    body = {path: doc for (path, _), doc in zip(kind.reads, docs, strict=True)}
    return {"status": docs[0]["status"], "body": body}


def this(obj: Obj) -> dict[str, str]:
    """The object's ids, as stable placeholders of a normalised outcome."""
    return {object_id: f"<this {param}>" for param, object_id in obj.items()}


def retryable(reply: Reply) -> bool:
    if reply.status_code != 400:
        return False
    try:
        body = reply.json()
    except ValueError:
        return False
    return body.get("error_type") in RETRYABLE or (
        "http_reason" in body and body.get("code") in REEPAY_RETRYABLE
    )


async def send(
    client: Client,
    s: Racing,
    op: Op,
    obj: Obj,
    headers: dict[str, str] | None,
    body: Body = None,
) -> Reply:
    """``body``: the body as filled already (a retry sends what the first attempt sent: a
    fresh ``UNIQUE`` would make it another request under the same key)."""
    if op.body is None:
        return await client.request(op.method, op.url(obj), headers=headers)
    filled = op.body_for(s, obj) if body is None else body
    return await client.request(op.method, op.url(obj), json=filled, headers=headers)


async def until_done(
    client: Client,
    s: Racing,
    op: Op,
    obj: Obj,
    headers: dict[str, str] | None,
    body: Body = None,
) -> Reply:
    """``op`` sent again until it is not refused as "in progress" (what a client does)."""
    for _ in range(200):
        reply = await send(client, s, op, obj, headers, body)
        if not retryable(reply):
            return reply
        await asyncio.sleep(0.01)
    raise AssertionError(f"{op.describe()} still in progress after 200 tries: {reply.text}")


# --- pair races ----------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    observed: dict[str, Wire]
    a_then_b: dict[str, Wire]
    b_then_a: dict[str, Wire]
    workers: tuple[int | None, int | None]  # the processes that answered A and B at once
    retried: str = ""  # "A" or "B" (or "AB"): refused as in progress at once, sent again

    @property
    def ok(self) -> bool:
        if self.retried == "B" or self.retried == "AB":  # B ran once A was done
            return self.observed == self.a_then_b
        if self.retried == "A":
            return self.observed == self.b_then_a
        return self.observed in (self.a_then_b, self.b_then_a)

    def describe(self) -> str:
        finals = (self.a_then_b["final"], self.b_then_a["final"])
        what = (
            "answers untrue to the serial order its final state comes from"
            if self.observed["final"] in finals
            else "final state of no serial order"
        )
        if self.retried:
            what += f" ({self.retried} was refused as in progress, and sent again after)"
        return "\n".join(
            [
                f"  round {self.number}: {what}"
                + (f" (A, B answered by workers {self.workers})" if self.workers[0] else ""),
                f"    observed (A || B): {headline(self.observed)}",
                f"    A then B:          {headline(self.a_then_b)}",
                f"    B then A:          {headline(self.b_then_a)}",
                f"    vs A then B: {outcome_differences(self.observed, self.a_then_b)}",
                f"    vs B then A: {outcome_differences(self.observed, self.b_then_a)}",
            ]
        )


async def race_pair(s: Racing, a: Op, b: Op, rounds: int) -> tuple[list[Round], list[str]]:
    """The rounds, and what went wrong with the serial orders themselves (two runs of one
    serial order that disagree: the oracle is not deterministic)."""
    kind = KINDS[a.kind]
    serial_runs = min(SERIAL_RUNS, rounds)
    async with s.client(kind) as client:
        objs = await gather_limited(
            (create(client, s, kind) for _ in range(rounds + 2 * serial_runs)), limit=16
        )
        raced_objs, serial_objs = objs[:rounds], objs[rounds:]
        # The races, one at a time: nothing else is in flight while A and B meet. A request
        # refused because the other one's payment operation was in flight ("retry once it is
        # done": it changed nothing) is sent again once both are answered, as a client would;
        # the outcome must then be that of the serial order it makes.
        raced: list[tuple[Reply, Reply, str]] = []
        for r, obj in enumerate(raced_objs):
            ra, rb = await client.together(
                [
                    (a.method, a.url(obj), a.body_for(s, obj), {}),
                    (b.method, b.url(obj), b.body_for(s, obj), {}),
                ],
                rotate=r,  # with 2 workers, A goes to each in turn
            )
            retried = ""
            if retryable(ra):
                ra, retried = await until_done(client, s, a, obj, None), "A"
            if retryable(rb):
                rb, retried = await until_done(client, s, b, obj, None), retried + "B"
            raced.append((ra, rb, retried))

        async def serial(first: Op, second: Op, obj: Obj) -> tuple[Reply, ...]:
            one = await send(client, s, first, obj, None)
            return one, await send(client, s, second, obj, None)

        serials = await gather_limited(
            [serial(a, b, obj) for obj in serial_objs[:serial_runs]]
            + [serial(b, a, obj) for obj in serial_objs[serial_runs:]]
        )
        finals = await gather_limited(read(client, kind, o) for o in objs)

    def outcome(ra: Reply, rb: Reply, i: int) -> dict[str, Wire]:
        docs = {"A": wire(ra), "B": wire(rb), "final": finals[i]}
        return normalise(docs, {**s.stable, **this(objs[i])})

    ab = [outcome(serials[j][0], serials[j][1], rounds + j) for j in range(serial_runs)]
    ba = [
        outcome(serials[j][1], serials[j][0], rounds + j)
        for j in range(serial_runs, 2 * serial_runs)
    ]
    problems = [
        f"  {name}, run twice on identical fresh objects, gave different outcomes:"
        f" {outcome_differences(runs[i], runs[0])}"
        for name, runs in (("A then B", ab), ("B then A", ba))
        for i in range(1, len(runs))
        if runs[i] != runs[0]
    ]
    results = [
        Round(
            r,
            observed=outcome(raced[r][0], raced[r][1], r),
            a_then_b=ab[0],
            b_then_a=ba[0],
            workers=(raced[r][0].worker, raced[r][1].worker),
            retried=raced[r][2],
        )
        for r in range(rounds)
    ]
    return results, problems


def made_with(kind: Kind) -> str:
    return "; ".join(
        f"{step.method} {step.path}" + ("" if step.body is None else f" {json.dumps(step.body)}")
        for step in kind.steps
    )


@pytest.mark.parametrize("pair", pairs(), ids=pair_id)
def test_concurrent_writes_equal_a_serial_order(racing: Racing, pair: tuple[Op, Op]) -> None:
    a, b = pair
    results, oracle = asyncio.run(race_pair(racing, a, b, ROUNDS))
    if oracle:
        pytest.fail(f"{racing.target.label}: {pair_id(pair)}\n" + "\n".join(oracle))
    bad = [r for r in results if not r.ok]
    racing.races.cases += 1
    racing.races.rounds += len(results)
    racing.races.anomalies += len(bad)
    racing.races.across += sum(r.workers[0] != r.workers[1] for r in results)
    racing.races.retried += sum(len(r.retried) for r in results)
    if not bad:
        return
    racing.races.failed[pair_id(pair)] = f"{len(bad)}/{len(results)}"
    kind = KINDS[a.kind]
    reads = ", ".join(f"GET {path} {q or ''}".rstrip() for path, q in kind.reads)
    pytest.fail(
        "\n".join(
            [
                f"{racing.target.label}: in {len(bad)} of {len(results)} rounds (rounds"
                f" {', '.join(str(r.number) for r in bad)}), A and B sent at once to one fresh"
                f" {kind.name} (made with {made_with(kind)}) gave an outcome"
                " that neither serial order gives",
                f"  A = {a.describe()}",
                f"  B = {b.describe()}",
                f"  final state: {reads}",
                *(r.describe() for r in bad[:SHOWN_ROUNDS]),
            ]
        ),
        pytrace=False,
    )


# --- keyed retries -------------------------------------------------------------------------


async def count_rows(s: Racing, table: str) -> int:
    rows = await asyncio.to_thread(
        query,
        s.target.database_url,
        f"SELECT count(*) FROM {table} WHERE project_id = $1",
        s.target.keys.project.id,
    )
    return int(rows[0][0])


@dataclass
class Keyed:
    answers: list[Reply]
    observed: dict[str, Wire]  # the first answer, and the final state
    expected: dict[str, Wire]  # the same, of the request sent once without a key
    effect_problem: str | None = None
    retried: int = 0  # answers "in progress" (a payment's key while it runs), sent again


def answer_label(r: Reply) -> str:
    body = wire(r)["body"]
    error = body.get("error_type") if isinstance(body, dict) else None
    replayed = " (replayed)" if r.headers.get("idempotent-replayed") == "true" else ""
    return f"{r.status_code}{' ' + error if error else ''}{replayed}"


async def copies_at_once(
    s: Racing, client: Client, op: Op, obj: Obj, headers: dict[str, str]
) -> tuple[list[Reply], int]:
    """``KEYED_COPIES`` copies of the keyed request at once; those refused because the first
    is still in flight (a payment: its key is claimed until the gateway has answered) are
    sent again once all have been answered, as a client would. Returns the final answers and
    how many were sent again."""
    body = op.body_for(s, obj)
    answers = await client.together([(op.method, op.url(obj), body, headers)] * KEYED_COPIES)
    retried = 0
    for i, reply in enumerate(answers):
        if retryable(reply):
            answers[i] = await until_done(client, s, op, obj, headers, body)
            retried += 1
    return answers, retried


async def keyed_create(
    s: Racing, client: Client, method: str, path: str, headers: dict[str, str]
) -> Keyed:
    spec = CREATES[(method, path)]
    kind = KINDS[spec.kind]
    op = Op(method, path, spec.kind, "create", spec.body)

    async def made(r: Reply) -> Wire:
        if r.status_code != 200:
            return {"status": None, "body": "nothing made"}
        return await read(client, kind, {p: dig(r.json(), d) for p, d in spec.takes.items()})

    once = await send(client, s, op, {}, None)
    expected = normalise({"answer": wire(once), "final": await made(once)}, s.stable)
    before = await count_rows(s, spec.table)
    answers, retried = await copies_at_once(s, client, op, {}, headers)
    after = await count_rows(s, spec.table)
    observed = normalise({"answer": wire(answers[0]), "final": await made(answers[0])}, s.stable)
    problem = None if after - before == 1 else f"{after - before} {spec.table} rows made, not 1"
    return Keyed(answers, observed, expected, problem, retried)


async def keyed_write(
    s: Racing, client: Client, method: str, path: str, headers: dict[str, str]
) -> Keyed:
    params = next(ps for m, p, ps in write_routes() if (m, p) == (method, path))
    variant = VARIANTS[(method, path)][0]
    kind_name = kind_of(variant, params)
    assert kind_name is not None
    kind = KINDS[kind_name]
    op = Op(method, path, kind_name, variant[0], variant[1])
    subject, twin = await asyncio.gather(create(client, s, kind), create(client, s, kind))
    once = await send(client, s, op, twin, None)
    expected = normalise(
        {"answer": wire(once), "final": await read(client, kind, twin)},
        {**s.stable, **this(twin)},
    )
    answers, retried = await copies_at_once(s, client, op, subject, headers)
    observed = normalise(
        {"answer": wire(answers[0]), "final": await read(client, kind, subject)},
        {**s.stable, **this(subject)},
    )
    return Keyed(answers, observed, expected, retried=retried)


async def keyed_round(
    s: Racing, client: Client, method: str, path: str, number: int
) -> tuple[str | None, bool, int]:
    """One round: what went wrong (or None), whether several workers answered, and how many
    answers were "in progress" and sent again."""
    key = f"race-{uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key}
    run = keyed_create if (method, path) in CREATES else keyed_write
    k = await run(s, client, method, path, headers)
    across = len({r.worker for r in k.answers}) > 1
    problems = []
    distinct = {(r.status_code, r.content) for r in k.answers}
    if len(distinct) > 1:
        tally = Counter(answer_label(r) for r in k.answers)
        problems.append(
            f"{len(distinct)} different answers to {KEYED_COPIES} identical keyed requests: "
            + ", ".join(f"{n} x {what}" for what, n in tally.most_common())
            + "; e.g. "
            + " | ".join(sorted({f"{st} {body[:300]!r}" for st, body in distinct})[:3])
        )
    fresh = [r for r in k.answers if r.headers.get("idempotent-replayed") != "true"]
    if len(fresh) != 1:
        problems.append(f"{len(fresh)} answers without Idempotent-Replayed: true, not 1")
    if k.effect_problem:
        problems.append(k.effect_problem)
    if k.observed != k.expected:
        problems.append(
            "the (first) answer or the final state differs from those of the request sent"
            f" once without a key: {outcome_differences(k.observed, k.expected)}"
        )
    if not problems:
        return None, across, k.retried
    return f"  round {number} (key {key}): " + "; ".join(problems), across, k.retried


async def keyed_rounds(
    s: Racing, method: str, path: str, rounds: int
) -> list[tuple[str | None, bool, int]]:
    if (method, path) in CREATES:
        kind = CREATES[(method, path)].kind
    else:
        params = next(ps for m, p, ps in write_routes() if (m, p) == (method, path))
        kind = kind_of(VARIANTS[(method, path)][0], params) or ""
    async with s.client(KINDS[kind]) as client:
        return [await keyed_round(s, client, method, path, r) for r in range(rounds)]


@pytest.mark.parametrize("route", keyed_routes(), ids=lambda r: f"{r[0]} {r[1]}")
def test_keyed_retries_at_once_answer_alike_with_one_effect(
    racing: Racing, route: tuple[str, str]
) -> None:
    method, path = route
    results = asyncio.run(keyed_rounds(racing, method, path, KEYED_ROUNDS))
    bad = [problem for problem, _, _ in results if problem is not None]
    racing.keyed.cases += 1
    racing.keyed.rounds += len(results)
    racing.keyed.anomalies += len(bad)
    racing.keyed.across += sum(across for _, across, _ in results)
    racing.keyed.retried += sum(retried for _, _, retried in results)
    if not bad:
        return
    racing.keyed.failed[f"{method} {path}"] = f"{len(bad)}/{len(results)}"
    body = CREATES[route].body if route in CREATES else VARIANTS[route][0][1]
    pytest.fail(
        f"{racing.target.label}: {method} {path} {json.dumps(body) if body else ''} sent"
        f" {KEYED_COPIES} times at once with one Idempotency-Key: {len(bad)} of {len(results)}"
        " rounds went wrong\n" + "\n".join(bad),
        pytrace=False,
    )

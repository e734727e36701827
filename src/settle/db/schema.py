"""The one schema definition (SQLAlchemy Core metadata); Alembic migrations are checked against it.

Conventions, the same on SQLite and PostgreSQL:
- money is BIGINT minor units of the row's currency; never a float;
- time is BIGINT microseconds since the epoch, UTC (see ``settle.clock``);
- ``seq`` is an insertion-ordered surrogate key used for listing and cursors; ``id`` is the public
  prefixed id;
- every tenant-owned row carries ``project_id`` and ``sandbox``: the authenticated scope.
  Every query filters on both;
- JSON columns hold descriptive data only (metadata, device, risk...), never money.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import base as postgresql_types

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

Json = sa.JSON().with_variant(JSONB(), "postgresql")


# Parts of the schema that exist on one backend only carry ``info={"dialect": name}``; the
# migrations make them there alone, and Alembic's comparison skips them elsewhere
# (``include_object``, used by migrations/env.py and the schema test).
def only_on(dialect: str) -> dict[str, str]:
    """The ``info`` of a column or index that exists on ``dialect`` alone."""
    return {"dialect": dialect}


def include_object(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for a database of ``dialect``: the schema's objects of
    another backend (``only_on``) are not expected there."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if reflected:  # what the database has is always compared
            return True
        own: str = obj.info.get("dialect", dialect)
        return own == dialect

    return include


class Xid8(sa.types.UserDefinedType[int]):
    """PostgreSQL's ``xid8``: a 64-bit transaction id, never wrapping (``pg_current_xact_id()``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XID8"


# So that the schema test and Alembic's comparison read the column back as this type.
postgresql_types.ischema_names["xid8"] = Xid8


Money = sa.BigInteger
Micros = sa.BigInteger


def _seq() -> sa.Column[int]:
    # BIGINT on PostgreSQL (identity), INTEGER PRIMARY KEY (the rowid alias) on SQLite.
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(),
        primary_key=True,
    )


def _scope(*, checked: bool = True) -> list[sa.Column[object]]:
    """A scoped table's project and mode; ``checked``: the project id is a foreign key."""
    references = [sa.ForeignKey("projects.id")] if checked else []
    return [
        sa.Column("project_id", sa.Text, *references, nullable=False),
        sa.Column("sandbox", sa.Boolean, nullable=False),
    ]


projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("default_currency", sa.Text, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("sandbox", sa.Boolean, nullable=False),
    # Which API the key opens: "processout" (Basic project-id:secret) or "reepay" (Basic priv_:).
    sa.Column("dialect", sa.Text, nullable=False),
    # SHA-256 of the secret, hex. Secrets are 190+ bits of randomness, so a fast hash is the
    # right tool (as for GitHub tokens); a slow KDF would only slow every request.
    sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hint", sa.Text, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("revoked_at", Micros, nullable=True),
)

customers = sa.Table(
    "customers",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("handle", sa.Text, nullable=True),
    sa.Column("email", sa.Text),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("company_name", sa.Text),
    sa.Column("vat", sa.Text),  # VAT registration number (Reepay's customer ``vat``)
    sa.Column("address1", sa.Text),
    sa.Column("address2", sa.Text),
    sa.Column("city", sa.Text),
    sa.Column("state", sa.Text),
    sa.Column("zip", sa.Text),
    sa.Column("country_code", sa.Text),
    sa.Column("ip_address", sa.Text),
    sa.Column("phone_number", sa.Text),
    sa.Column("phone", Json),
    sa.Column("legal_document", sa.Text),
    sa.Column("date_of_birth", sa.Text),
    sa.Column("is_business", sa.Boolean),
    sa.Column("sex", sa.Text),
    sa.Column("reference_id", sa.Text),
    sa.Column("registered_at", Micros),
    sa.Column("balance", Money),
    sa.Column("currency", sa.Text),
    sa.Column("default_token_id", sa.Text),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.Column("deleted_at", Micros),
    sa.Index(None, "project_id", "sandbox", "seq"),
    sa.Index(None, "project_id", "sandbox", "handle", unique=True),
)

invoices = sa.Table(
    "invoices",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("handle", sa.Text, nullable=True),
    sa.Column("customer_id", sa.Text),
    sa.Column("token_id", sa.Text),
    sa.Column("transaction_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("order_id", sa.Text),
    sa.Column("reference_id", sa.Text),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("statement_descriptor", sa.Text),
    sa.Column("statement_descriptor_phone", sa.Text),
    sa.Column("statement_descriptor_city", sa.Text),
    sa.Column("statement_descriptor_company", sa.Text),
    sa.Column("statement_descriptor_url", sa.Text),
    sa.Column("return_url", sa.Text),
    sa.Column("cancel_url", sa.Text),
    sa.Column("webhook_url", sa.Text),
    sa.Column("initiation_type", sa.Text),
    sa.Column("payment_intent", sa.Text),
    sa.Column("payment_type", sa.Text),
    sa.Column("sca_exemption_reason", sa.Text),
    sa.Column("exemption_reason_3ds2", sa.Text),
    sa.Column("challenge_indicator", sa.Text),
    sa.Column("merchant_initiator_type", sa.Text),
    sa.Column("require_backend_capture", sa.Boolean),
    sa.Column("submerchant_id", sa.Text),
    sa.Column("shipping_amount", Money),
    sa.Column("tax_amount", Money),
    sa.Column("tax_rate", sa.Text),
    sa.Column("auto_capture_at", Micros),
    sa.Column("expires_at", Micros),
    sa.Column("metadata", Json, nullable=False),
    # Descriptive nested objects, stored as given (after validation): risk, device, shipping
    # (its amount lives in shipping_amount), external_fraud_tools, unsupported_feature_bypass,
    # gateway_data, billing, submerchant, verification.
    sa.Column("attributes", Json, nullable=False),
    # Its lines (details, order lines) in order, a JSON array of settle.invoices.models
    # .InvoiceLine: values of the invoice, written and replaced with it, never read alone
    # (migration 0017 says what rows of their own cost).
    sa.Column("lines", Json, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    # +1 on every change of the invoice or its lines (see settle.invoices.models.Invoice).
    sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
    # Set when deleted: the row stays as the place of list cursors that name it.
    sa.Column("deleted_at", Micros),
    sa.Index(None, "project_id", "sandbox", "seq"),
    sa.Index(None, "project_id", "sandbox", "handle", unique=True),
    sa.Index(None, "customer_id"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("invoice_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("authorized_amount", Money, nullable=False),
    sa.Column("captured_amount", Money, nullable=False),
    sa.Column("refunded_amount", Money, nullable=False),
    sa.Column("voided_amount", Money, nullable=False),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    # The payment source and what the gateway said of it (set by the first authorization).
    sa.Column("card_id", sa.Text),
    sa.Column("token_id", sa.Text),
    sa.Column("gateway_name", sa.Text),
    # The gateway's handle on the card (its vault reference), kept with the transaction so
    # that captures, voids and refunds need not read the card.
    sa.Column("card_reference", sa.Text),
    sa.Column("cvc_check", sa.Text),
    sa.Column("avs_check", sa.Text),
    sa.Column("three_d_s_status", sa.Text),
    # When each amount first moved; derived from the operations, kept for reading.
    sa.Column("authorized_at", Micros),
    sa.Column("captured_at", Micros),
    sa.Column("voided_at", Micros),
    sa.Column("refunded_at", Micros),
    sa.Column("chargedback_at", Micros),
    sa.Index(None, "project_id", "sandbox", "seq"),
    sa.Index(None, "invoice_id"),
    sa.Index(None, "customer_id"),
)

# The append-only log of every gateway operation on a transaction: a row is written ``pending``
# before the gateway is called (in its own database transaction) and completed with the
# gateway's answer in a second one. The transaction's amounts and status are derived from it
# (settle.payments.ledger). ``operation_key`` is the idempotency key the gateway is sent: a
# crash between the call and the second write is resolved by asking the gateway by that key.
transaction_operations = sa.Table(
    "transaction_operations",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("transaction_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | succeeded | failed
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("card_id", sa.Text),
    sa.Column("token_id", sa.Text),
    sa.Column("gateway_name", sa.Text, nullable=False),
    sa.Column("gateway_reference", sa.Text),
    sa.Column("operation_key", sa.Text, nullable=False, unique=True),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    # Refunds are operations too; these describe them (the Refund object of the API).
    sa.Column("refund_id", sa.Text, unique=True),
    sa.Column("reason", sa.Text),
    sa.Column("information", sa.Text),
    # A customer action the gateway asked for (3-D Secure): {"type", "value"}.
    sa.Column("customer_action", Json),
    # An authorization of a sale: capture this much once it succeeds (also after 3-D Secure).
    sa.Column("capture_after", Money),
    # What a decline does beyond failing the authorization: "fail_invoice" (a Reepay settle).
    sa.Column("on_decline", sa.Text),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("completed_at", Micros),
    sa.Index(None, "transaction_id", "seq"),
    sa.Index(None, "status"),
)

# The lines of a refund's credit note, as the refund was asked with them (Reepay's
# ``note_lines``): kept by the refund's id (one credit note per refund, named after it; see
# settle.billing.refunds). A refund asked without lines has none: its note shows one line.
credit_note_lines = sa.Table(
    "credit_note_lines",
    metadata,
    _seq(),
    *_scope(),
    sa.Column("refund_id", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    # Per unit, in minor units, including VAT when ``amount_incl_vat`` (as an order line).
    sa.Column("amount", Money, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("vat_rate", sa.Text),
    sa.Column("amount_incl_vat", sa.Boolean, nullable=False),
    sa.Column("origin", sa.Text),
    sa.Column("order_line_id", sa.Text),
    sa.Index(None, "refund_id", "position", unique=True),
)

cards = sa.Table(
    "cards",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    # Never the number or the CVC: the gateway keeps the card (its vault reference below).
    sa.Column("scheme", sa.Text, nullable=False),
    sa.Column("type", sa.Text),
    sa.Column("iin", sa.Text, nullable=False),
    sa.Column("last_4_digits", sa.Text, nullable=False),
    sa.Column("exp_month", sa.Integer, nullable=False),
    sa.Column("exp_year", sa.Integer, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("cvc_check", sa.Text, nullable=False),
    sa.Column("avs_check", sa.Text, nullable=False),
    sa.Column("gateway_name", sa.Text, nullable=False),
    sa.Column("gateway_reference", sa.Text),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("anonymized_at", Micros),
    sa.Index(None, "project_id", "sandbox", "seq"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("card_id", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("deleted_at", Micros),
    sa.Index(None, "customer_id", "seq"),
)

# The sandbox gateway's own durable memory, as a real gateway keeps its own: the cards it
# vaulted (the test-card behaviour only, never the number) and the outcome of every operation
# by its key, so that asking again (a retry, or recovery after a crash) gives the same answer.
sandbox_vault = sa.Table(
    "sandbox_vault",
    metadata,
    sa.Column("reference", sa.Text, primary_key=True),
    sa.Column("behaviour", sa.Text, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
)

sandbox_operations = sa.Table(
    "sandbox_operations",
    metadata,
    sa.Column("operation_key", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("outcome", Json, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
)

# The answers to POSTs, PUTs and DELETEs sent with an Idempotency-Key header, written in the
# same transaction as the change they answer: a retry gets the recorded answer instead of a
# second change. ``fingerprint`` (SHA-256 of method, path, query and body) refuses a key reused
# for a different request; ``body`` is the response as sent (UTF-8 JSON).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _seq(),
    *_scope(),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Index(None, "project_id", "sandbox", "idempotency_key", unique=True),
    sa.Index(None, "created_at"),
    # The claims still open (requests in flight, or dead: released by the recovery loop,
    # which found them by reading every key before migration 0019).
    sa.Index(
        "ix_idempotency_keys_claimed",
        "created_at",
        postgresql_where=sa.text("status = 0"),
        sqlite_where=sa.text("status = 0"),
    ),
)

# The transactional outbox: one row per state change, written by ``settle.events.outbox`` in
# the same database transaction as the change (a rolled-back change leaves no event; a crash
# after the commit loses none). ``seq`` is the global order of insertion (on SQLite a plain
# rowid, not AUTOINCREMENT: events are never deleted, so no number is handed out twice, and
# AUTOINCREMENT's own bookkeeping cost every event ~10 us; migration 0020). ``data`` is the
# object as it was, JSON of the domain's own struct (Invoice, Transaction, Customer), which
# each dialect renders for its wire. Deliveries of one ``order_key`` (the invoice id for
# invoice and transaction events, the customer id for customer events) go out in ``seq``
# order. An event waits in ``unfanned_events`` until the delivery worker has made its
# delivery rows. On PostgreSQL ``xid`` is the id of the transaction that wrote the event: the
# events list is in (xid, seq) order, below the oldest running transaction's id, so a cursor
# never skips an event committed late (settle.events.service; migration 0021). SQLite needs
# neither: one writer at a time commits in seq order.
events = sa.Table(
    "events",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    # No foreign key: the event's project id is that of the object it carries, written in the
    # same transaction and checked there; a second check cost PostgreSQL ~19 us per event
    # (a trigger's query per row; migration 0020).
    *_scope(checked=False),
    sa.Column("type", sa.Text, nullable=False),  # settle.events.types.EventType value
    sa.Column("object_type", sa.Text, nullable=False),  # invoice | transaction | customer
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("order_key", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text),
    sa.Column("customer_id", sa.Text),
    sa.Column("transaction_id", sa.Text),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("fired_at", Micros, nullable=False),
    sa.Column(
        "xid",
        Xid8(),
        nullable=False,
        server_default=sa.text("pg_current_xact_id()"),
        info=only_on("postgresql"),
    ),
    sa.Index(None, "project_id", "sandbox", "seq", info=only_on("sqlite")),
    sa.Index(None, "project_id", "sandbox", "xid", "seq", info=only_on("postgresql")),
)

# The events the delivery worker has not fanned out yet (settle.events.outbox writes a row here
# beside each event; the worker deletes it in the transaction that makes the event's
# deliveries), oldest first. A narrow table of its own rather than a flag on ``events``:
# setting the flag rewrote the event's whole row (its ``data``, ~1.7 KB for an invoice) with an
# entry in each of its indexes, 33 us and 2 KB of WAL per event on PostgreSQL, against 3.5 us
# and 58 bytes for deleting a row here (migration 0015).
unfanned_events = sa.Table(
    "unfanned_events",
    metadata,
    _seq(),
    sa.Column("event_id", sa.Text, nullable=False),
)

# Where a project's events are sent, per mode and per dialect (each dialect's deliveries have
# their own body and signature). ``urls`` and ``event_types`` are JSON lists of strings; an
# empty ``event_types`` means every type. Event types are stored in the dialect's own names
# (Reepay's ``invoice_settled``...), as the project set them.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("project_id", sa.Text, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("sandbox", sa.Boolean, primary_key=True),
    sa.Column("dialect", sa.Text, primary_key=True),  # processout | reepay
    sa.Column("urls", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("event_types", sa.Text, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
)

# Webhook deliveries (settle.events.deliveries): one row per event and receiving URL, made
# when the worker fans an event out, and the state of its delivery. ``next_attempt_at`` is when
# the row is due; while an attempt is under way ``leased_until`` is past the attempt's deadline
# (the claim's lease), so a worker that dies mid-send leaves the row due again, never lost. A
# pending row holds back the later rows of its ``(url, order_key)``: deliveries of one object
# arrive in order.
deliveries = sa.Table(
    "deliveries",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("event_seq", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("dialect", sa.Text, nullable=False),  # processout | reepay
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("order_key", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Micros, nullable=False),
    # Retries stop here (3 days after the delivery was made, or redelivery was asked).
    sa.Column("retry_until", Micros, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("delivered_at", Micros),
    sa.Column("last_attempt_at", Micros),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    # While an attempt is under way: until when this worker's claim holds the row (a worker
    # that dies mid-send leaves it due again then). No index holds it, so that a claim is a
    # HOT update on PostgreSQL (migration 0015).
    sa.Column("leased_until", Micros),
    # Made while its URL rested (gave no answer lately): due only at the end of its retry
    # window, unless the URL answers again first, which makes it due at once (migration 0018).
    sa.Column("parked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "event_seq", "dialect", "url", unique=True),
    # The due rows and the order per object: of pending rows only.
    sa.Index(
        "ix_deliveries_pending_due",
        "next_attempt_at",
        "event_seq",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
    sa.Index(
        "ix_deliveries_pending_order",
        "order_key",
        "url",
        "event_seq",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
    # (No index on event_id: an event's deliveries are found by its seq, through the unique
    # index above; migration 0020.)
    sa.Index(None, "project_id", "sandbox", "seq"),
    # A URL's parked rows, found when it answers again (only parked rows are in it).
    sa.Index(
        "ix_deliveries_parked",
        "project_id",
        "sandbox",
        "url",
        "seq",
        postgresql_where=sa.text("state = 'pending' AND parked"),
        sqlite_where=sa.text("state = 'pending' AND parked"),
    ),
    postgresql_with={"fillfactor": 50},
)

# Every attempt to deliver, successful or not (GET /events/{id}/webhooks lists them).
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    _seq(),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    *_scope(),
    sa.Column("delivery_id", sa.Text, nullable=False),
    sa.Column("at", Micros, nullable=False),
    sa.Column("status_code", sa.Integer),  # none when no answer came (refused, timed out)
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("elapsed_ms", sa.Integer, nullable=False),
    # The start of the receiver's answer (at most 1 KiB), for the merchant's debugging.
    sa.Column("response_body", sa.Text),
    sa.Index(None, "delivery_id", "seq"),
)

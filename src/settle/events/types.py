"""Every event type Settle records, registered in one place (as error codes are in
``settle.errors``): a dialect names them its own way, and a test proves each dialect has a name
for every one, so no event can be recorded that a client could not be told about."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    """What happened, in the domain's words."""

    INVOICE_CREATED = "invoice.created"
    INVOICE_CHANGED = "invoice.changed"
    INVOICE_DELETED = "invoice.deleted"
    INVOICE_AUTHORIZED = "invoice.authorized"
    INVOICE_SETTLED = "invoice.settled"
    INVOICE_FAILED = "invoice.failed"
    INVOICE_CANCELLED = "invoice.cancelled"
    INVOICE_REACTIVATED = "invoice.reactivated"
    INVOICE_REFUNDED = "invoice.refunded"
    TRANSACTION_REQUESTED = "transaction.requested"
    TRANSACTION_AUTHORIZED = "transaction.authorized"
    TRANSACTION_CAPTURED = "transaction.captured"
    TRANSACTION_FAILED = "transaction.failed"
    TRANSACTION_VOIDED = "transaction.voided"
    TRANSACTION_REFUNDED = "transaction.refunded"
    TRANSACTION_DISPUTED = "transaction.disputed"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_CHANGED = "customer.changed"
    CUSTOMER_DELETED = "customer.deleted"

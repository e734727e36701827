"""Reepay charges, the one-call path: an invoice for a customer, paid with a payment method.

A charge is an invoice (the same row; ``GET /v1/invoice/{handle}`` shows it too) with a
payment attempt. ``POST /v1/charge`` creates the invoice and authorizes it on ``source``,
capturing at once with ``settle: true`` (``settle`` defaults to false: authorize only); an
authorized charge is settled (captured) or cancelled (voided) later. Every gateway call goes
through ``Call.pay``: its pending operation is committed first, then the gateway is called,
then the outcome is written. A declined charge is answered (HTTP 200) in state ``failed``
with the vendor's ``error`` word.

The invoice is ``order_lines``, or one line of ``amount`` (``ordertext``, "Charge" by
default); not both. Its ``handle`` is unique per project and mode like any invoice's.

A charge of a handle taken is a new attempt to pay that invoice, as the vendor's charge
allows ("multiple payments can be attempted for the same handle but only one authorized or
settled"; its rebuilt document in shared/reference has no descriptions, so this rule is the
issue's and the vendor's public reference's, not read from that file): when the invoice is
the same charge (the same customer, currency and order lines) and nobody paid it (pending,
or failed after a decline), a new sale is made on ``source`` and the invoice keeps its lines,
metadata and addresses (the retry's are not applied). Otherwise the retry is refused and
writes nothing: 11 for a handle of another customer's or another content's invoice, 79 when
settled, 105 when authorized, 82 when cancelled, 80 while an attempt is in flight. The
invoice is locked first, so two retries at once run one after the other: the second sees the
first's attempt (80 while it is in flight, 79 or 105 once it succeeded, another attempt if
it was declined). Two *first* charges of a new handle at once: one creates the invoice, the
other is refused with 11 (the unique handle), or, if it read after the first committed, as a
retry would be (80, 79).

The customer: ``customer_handle``, or the vendor's ``customer`` object (a CreateCustomer),
whose handle names the customer to use when it exists (the object's other fields are then
ignored, as the vendor does); given both, they must name the same customer. A ``customer``
that exists nowhere would be created by the vendor; here it cannot pay: a new customer has
no payment method, and Settle makes none from a charge (see ``source``), so the charge is
refused as for any customer without that payment method (40 for a ``ca_`` id, 76 for
``auto``), validated before anything is written: no customer is left behind.

The source: a ``ca_`` payment method of the customer, or ``auto`` (its newest active one).
Any other (``ct_`` card tokens, made by the vendor's hosted checkout, which Settle has not,
and the other payment types) is code 110 "Unknown or missing source".

``key`` is the request's idempotency key, as a refund's (an ``Idempotency-Key`` header, if
sent, takes its place): a retry with the same key and body gets the first answer, and the
same key with another body a 400. The vendor's other options (``recurring``, ``parameters``,
...) are refused (code 43, ``ops_schemas.UNSUPPORTED``), never ignored.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import under_lock
from settle.api.reepay import convert, payment_methods, render, transactions
from settle.api.reepay import ops_schemas as ops_wire
from settle.api.reepay import schemas as wire
from settle.api.reepay.base import find_customer, find_invoice, json_response, path_ref, start
from settle.api.reepay.invoices import AUTO_PAYMENT_METHOD, manual_transfer, not_implemented
from settle.billing import service as billing
from settle.billing import states
from settle.billing.payments import Attempt, Done
from settle.customers import service as customers
from settle.customers.models import Customer
from settle.db.database import Lock, Tx
from settle.errors import ConflictError, ErrorCode, NotFoundError, ValidationError, invalid
from settle.invoices import service as invoices
from settle.invoices.models import Invoice, InvoiceInput, LineInput
from settle.payments.ledger import MANUAL
from settle.projects import service as projects
from settle.projects.models import Scope

# The Invoice fields a Charge repeats.
_FROM_INVOICE: Final[tuple[str, ...]] = (
    "handle",
    "state",
    "customer",
    "amount",
    "currency",
    "created",
    "order_lines",
    "refunded_amount",
    "authorized_amount",
    "authorized",
    "settled",
    "cancelled",
    "billing_address",
    "shipping_address",
)
# The one order line of a charge given as an ``amount``, when it has no ``ordertext``.
DEFAULT_ORDERTEXT: Final = "Charge"


def _source(payment: transactions.Payment) -> dict[str, Any] | None:
    """The vendor's ChargeSource: what the last attempt to pay used (None: nothing yet)."""
    for op in reversed(payment.log):
        if op.gateway_name == MANUAL:
            return {"type": "manual"}
        card = payment.cards.get(op.card_id or "")
        if card is not None:
            out: dict[str, Any] = {"type": "card"}
            if op.token_id:
                out["card"] = payment_methods.method_id(op.token_id)
            out.update(payment_methods.card_facts(card))
            out["provider"] = payment_methods.PROVIDER
            return out
    return None


def render_charge(invoice: dict[str, Any], payment: transactions.Payment) -> dict[str, Any]:
    source = _source(payment)
    if source is None:
        raise NotFoundError("invoice", invoice["handle"])
    out: dict[str, Any] = {k: invoice[k] for k in _FROM_INVOICE if k in invoice}
    out["source"] = source
    # Processing: the gateway has an operation and has not answered yet. A charge waiting for
    # its payer (3-D Secure) is ``pending`` with ``redirect_url``, not processing: nothing
    # happens until the payer acts (the transaction's own state says the same).
    out["processing"] = any(
        op.status == "pending" and transactions.redirect_of(op) is None for op in payment.log
    )
    found = invoice["transactions"]
    if found:
        out["transaction"] = found[-1]["id"]
        if "redirect_url" in found[-1]:  # waiting for the payer (3-D Secure)
            out["redirect_url"] = found[-1]["redirect_url"]
    error = transactions.last_error(payment)
    if error is not None and invoice["state"] == "failed":
        out["error"] = error
        out["error_state"] = (
            "processing_error" if error == transactions.OTHER_ERROR else "hard_declined"
        )
    return out


async def _charge_response(tx: Tx, scope: Scope, invoice: Invoice) -> Response:
    """A charge as the vendor shows it; an invoice nobody tried to pay is no charge (31)."""
    found = await transactions.payments_of(tx, scope, [invoice.transaction_id])
    payment = found.get(invoice.transaction_id)
    if payment is None:
        raise NotFoundError("invoice", invoice.terms.handle or invoice.id)
    customer_handle = None
    if invoice.terms.customer_id is not None:
        customer_handle = await _handle_of(tx, scope, invoice.terms.customer_id)
    rendered = render.invoice(
        invoice,
        customer_handle=customer_handle,
        transaction=payment.transaction,
        transactions=transactions.render_all(payment, invoice.id),
    )
    return json_response(render_charge(rendered, payment))


async def _handle_of(tx: Tx, scope: Scope, customer_id: str) -> str:
    handles = await customers.customer_handles(tx, scope, {customer_id})
    return handles.get(customer_id) or customer_id


def _invoice_wire(body: ops_wire.CreateCharge) -> wire.CreateCustomerInvoice:
    """The charge's invoice, as a customer invoice would be asked for (one set of rules)."""
    lines = body.order_lines or []
    if lines and body.amount is not None:
        raise invalid("amount", "give either amount or order_lines, not both.")
    if not lines:
        if body.amount is None:
            raise invalid("amount", "is required when no order_lines are given.")
        lines = [
            wire.CreateOrderLine(
                ordertext=body.ordertext or DEFAULT_ORDERTEXT, amount=body.amount, quantity=1
            )
        ]
    return wire.CreateCustomerInvoice(
        handle=body.handle,
        order_lines=lines,
        currency=body.currency,
        metadata=body.metadata,
        billing_address=body.billing_address,
        shipping_address=body.shipping_address,
    )


def _refuse_unsupported(body: ops_wire.CreateCharge | ops_wire.SettleCharge) -> None:
    for name in ops_wire.UNSUPPORTED[type(body)]:
        value = getattr(body, name)
        if value is not None and value is not False:
            raise not_implemented(name.rstrip("_"), "This option")


def _customer_ref(body: ops_wire.CreateCharge) -> str | None:
    """The handle of the customer charged; None: a new customer (``generate_handle``).
    Checked before anything is read: ``customer`` with the rules of a customer's creation."""
    given = body.customer
    if given is not None:
        if given.handle is not None and given.generate_handle:
            raise invalid("customer.handle", "give either handle or generate_handle, not both.")
        if given.handle is None and not given.generate_handle:
            raise invalid("customer.handle", "is required (or set generate_handle to true).")
        if given.handle is not None:
            convert.check_handle(given.handle, "customer.handle")
        customers.check_fields(convert.customer_fields(given))  # e.g. a malformed email
        if body.customer_handle and body.customer_handle != given.handle:
            raise invalid("customer_handle", "names another customer than customer.handle.")
        return given.handle
    if body.customer_handle:
        return convert.lookup_handle(body.customer_handle, "customer")
    raise ValidationError(
        "customer_handle: is required (the customer of the payment method).",
        code=ErrorCode.INVOICE_NO_CUSTOMER,
        field="customer_handle",
    )


def _token_id(source: str) -> str | None:
    """The token ``source`` names; None for ``auto`` (the customer's newest active one)."""
    if source == AUTO_PAYMENT_METHOD:
        return None
    if source.startswith(payment_methods.PREFIX):
        return payment_methods.token_id(source)
    raise ValidationError(
        "source: must be a payment method of the customer (ca_...) or auto; other sources"
        " (card tokens ct_..., other payment types) are not supported.",
        code=ErrorCode.SOURCE_UNKNOWN,
        field="source",
    )


async def _charged_customer(
    tx: Tx, scope: Scope, ref: str | None, body: ops_wire.CreateCharge
) -> Customer:
    """The customer ``ref`` names. One that exists nowhere, named by a ``customer`` object,
    has no payment method to charge: refused as for an existing one without it (module
    docstring), before anything is written."""
    if ref is not None:
        try:
            return await find_customer(tx, scope, ref)
        except NotFoundError as exc:
            if exc.kind != "customer" or body.customer is None:
                raise
    if body.source == AUTO_PAYMENT_METHOD:
        raise ValidationError(
            "source: the customer has no active payment method (a customer created by a"
            " charge has none).",
            code=ErrorCode.PAYMENT_METHOD_MISSING,
            field="source",
        )
    raise NotFoundError("token", body.source[:60])


def _same_lines(invoice: Invoice, parts: convert.InvoiceParts) -> bool:
    def key(line: LineInput) -> tuple[object, ...]:
        return (line.name, line.amount, line.quantity, line.vat_rate, line.amount_incl_vat)

    return [key(line) for line in invoice.lines] == [key(line) for line in parts.lines]


async def _retried(
    tx: Tx, scope: Scope, parts: convert.InvoiceParts, customer: Customer
) -> Invoice | None:
    """The invoice of the charge's handle, locked, when the charge is a new attempt to pay it
    (module docstring); None when the handle is free. Refused (11) when it is another
    charge's: of another customer, currency or order lines."""
    try:
        invoice = await invoices.get_invoice(tx, scope, parts.handle, by="handle", lock=Lock.UPDATE)
    except NotFoundError:
        return None
    t = invoice.terms
    if (
        t.customer_id != customer.id
        or (parts.currency is not None and parts.currency != t.currency)
        or not _same_lines(invoice, parts)
    ):
        raise ConflictError(
            f"The handle {parts.handle!r} is taken by an invoice of another customer or"
            " content: a charge of a taken handle can only be a new attempt to pay the same"
            " charge.",
            code=ErrorCode.INVOICE_DUPLICATE_HANDLE,
        )
    return invoice


async def create_charge(request: Request) -> Response:
    call = await start(request)
    body = await call.body(ops_wire.CreateCharge)
    _refuse_unsupported(body)
    token_id = _token_id(body.source)
    parts = convert.invoice_parts(_invoice_wire(body))
    customer_ref = _customer_ref(body)
    if body.key is not None:
        call.keyed_by(body.key)

    async def begin(tx: Tx) -> Attempt:
        customer = await _charged_customer(tx, call.scope, customer_ref, body)
        retried = await _retried(tx, call.scope, parts, customer)
        if retried is not None:
            with payment_methods.named(body.source):
                return await states.begin_settle(
                    tx,
                    call.scope,
                    retried.id,
                    token_id=token_id,
                    auto=token_id is None,
                    gateway_name=call.runtime.gateway.name,
                    capture=bool(body.settle),
                    field="source",
                    capture_authorized=False,
                )
        currency = parts.currency
        if currency is None:
            project = await projects.get_project(tx, call.scope.project_id)
            currency = project.default_currency or convert.FALLBACK_CURRENCY
        data = InvoiceInput(
            amount=parts.amount,
            currency=currency,
            handle=parts.handle,
            customer_id=customer.id,
            metadata=parts.metadata,
            attributes=parts.attributes,
            lines=parts.lines,
        )
        invoice = await billing.create_invoice(tx, call.scope, data)
        with payment_methods.named(body.source):
            return await states.begin_settle(
                tx,
                call.scope,
                invoice.id,
                token_id=token_id,
                auto=token_id is None,
                gateway_name=call.runtime.gateway.name,
                capture=bool(body.settle),
                field="source",
            )

    async def answer(tx: Tx, done: Done) -> Response:
        return await _charge_response(tx, call.scope, await states.settle_finished(tx, done))

    return await call.pay(under_lock(begin), answer)


async def get_charge(request: Request) -> Response:
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
        return await _charge_response(tx, call.scope, invoice)


async def settle_charge(request: Request) -> Response:
    """Capture an authorized charge (``amount`` of it, all by default), or settle it by a
    manual transfer (``manual_settle``)."""
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")
    body = await call.body(ops_wire.SettleCharge)
    _refuse_unsupported(body)
    if body.key is not None:
        call.keyed_by(body.key)
    if body.manual_settle is not None:
        if body.amount is not None:
            raise invalid("amount", "a manual settle settles the whole amount; leave it out.")
        transfer = manual_transfer(body.manual_settle, "manual_settle.")

        async def perform(tx: Tx) -> Response:
            invoice = await find_invoice(tx, call.scope, ref)
            settled = await states.settle_manually(tx, call.scope, invoice.id, transfer)
            return await _charge_response(tx, call.scope, settled)

        return await call.write(perform)
    amount = body.amount

    async def begin(tx: Tx) -> Attempt:
        invoice = await find_invoice(tx, call.scope, ref)
        return await states.begin_capture(tx, call.scope, invoice.id, amount)

    async def answer(tx: Tx, done: Done) -> Response:
        return await _charge_response(tx, call.scope, await states.settle_finished(tx, done))

    return await call.pay(under_lock(begin), answer)


async def cancel_charge(request: Request) -> Response:
    """An authorized charge's authorization is voided (through the gateway); a charge with
    no money held (declined, or waiting for the payer) is cancelled at once."""
    call = await start(request)
    ref = path_ref(request, "handle", "invoice")
    async with call.read() as tx:
        invoice = await find_invoice(tx, call.scope, ref)
        found = await transactions.payments_of(tx, call.scope, [invoice.transaction_id])
    payment = found.get(invoice.transaction_id)
    tr = None if payment is None else payment.transaction
    held = tr is not None and tr.authorized_amount - tr.captured_amount - tr.voided_amount > 0
    if not held:
        # Re-checked under the lock by states.cancel: an authorization finishing meanwhile
        # makes it refuse (code 30) rather than cancel an invoice with money held.

        async def perform(tx: Tx) -> Response:
            cancelled = await states.cancel(tx, call.scope, invoice.id)
            return await _charge_response(tx, call.scope, cancelled)

        return await call.write(perform)

    async def begin(tx: Tx) -> Attempt:
        return await states.begin_void(tx, call.scope, invoice.id)

    async def answer(tx: Tx, done: Done) -> Response:
        return await _charge_response(tx, call.scope, await states.settle_finished(tx, done))

    return await call.pay(under_lock(begin), answer)

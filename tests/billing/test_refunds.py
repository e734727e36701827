"""Credit notes of an invoice's refunds (settle.billing.refunds.credit_notes): one per refund
that succeeded, in the order they succeeded, their VAT a cumulative share of the invoice's."""

from __future__ import annotations

from settle.billing.refunds import credit_note_id, credit_notes
from settle.invoices.models import Invoice, InvoiceLine, InvoiceState, InvoiceTerms
from settle.payments.gateway import OperationType
from settle.payments.models import Operation, OperationStatus


def _invoice(amount: int, vat_rate: str | None) -> Invoice:
    line = InvoiceLine(
        id="line_1", name="a", amount=amount, quantity=1, vat_rate=vat_rate, amount_incl_vat=True
    )
    return Invoice(
        id="iv_1",
        project_id="proj_1",
        sandbox=True,
        transaction_id="tr_1",
        state=InvoiceState.SETTLED,
        created_at=1,
        updated_at=1,
        version=1,
        terms=InvoiceTerms(amount=amount, currency="EUR"),
        lines=[line],
    )


def _op(
    n: int,
    amount: int,
    status: OperationStatus,
    completed_at: int | None,
    *,
    kind: OperationType = OperationType.REFUND,
    reason: str | None = None,
) -> Operation:
    return Operation(
        id=f"op_{n}",
        project_id="proj_1",
        sandbox=True,
        transaction_id="tr_1",
        type=kind,
        status=status,
        amount=amount,
        currency="EUR",
        gateway_name="sandbox",
        operation_key=f"k{n}",
        created_at=n,
        completed_at=completed_at,
        refund_id=f"re_{n}" if kind is OperationType.REFUND else None,
        reason=reason,
    )


def test_one_note_per_succeeded_refund_in_the_order_they_succeeded() -> None:
    # 999 including 25 % VAT: round_half_even(199.8) = 200 of VAT.
    invoice = _invoice(999, "0.25")
    log = [
        _op(1, 999, "succeeded", 1, kind=OperationType.CAPTURE),
        _op(2, 333, "succeeded", 30),  # succeeded after op 3
        _op(3, 333, "succeeded", 20),
        _op(4, 100, "failed", 25),
        _op(5, 100, "pending", None),
        _op(6, 333, "succeeded", 40, reason="shoes"),
    ]
    notes = credit_notes(invoice, log)
    assert [n.refund_id for n in notes] == ["re_3", "re_2", "re_6"]
    assert [n.id for n in notes] == [credit_note_id(r) for r in ("re_3", "re_2", "re_6")]
    # Shares of 333, 666, 999 of 200: 66.67 -> 67, 133.33 -> 133, 200.
    assert [n.amount_vat for n in notes] == [67, 66, 67]
    assert [n.amount_ex_vat for n in notes] == [266, 267, 266]
    assert (notes[2].text, notes[2].operation_id, notes[2].created_at) == ("shoes", "op_6", 40)


def test_no_vat_no_refunds() -> None:
    assert credit_notes(_invoice(500, None), [_op(1, 500, "succeeded", 1)])[0].amount_vat == 0
    assert credit_notes(_invoice(500, "0.25"), []) == []

"""VAT of invoice lines, exactly: integer minor units in, integer minor units out.

One rounding rule, applied once per *unit*, never to a line or an invoice total:

- a line defined **including** VAT (``amount_incl_vat``, Reepay's default and what every
  ProcessOut amount is) has ``unit_amount = amount``, and its unit VAT is
  ``round_half_even(unit_amount * rate / (1 + rate))``;
- a line defined **excluding** VAT has ``unit_amount_ex_vat = amount``, and its unit VAT is
  ``round_half_even(unit_amount_ex_vat * rate)``, added on top;
- the other unit figure is the difference (or sum), so ``unit_amount == unit_amount_vat +
  unit_amount_ex_vat`` holds exactly;
- a line's figures are its unit figures times its quantity, an invoice's the sums of its
  lines': nothing is rounded twice, and every total is the sum of what is shown beside it.

Rounding goes through ``settle.money.round_minor`` (banker's rounding, the one place money is
rounded). The quotient it rounds is computed in a Decimal context of ``_PRECISION`` digits,
which makes the result the exact rounding of the true fraction: the true value ``n / d``
(``d`` = the denominator of ``1 + rate``, at most ``2 * 10**MAX_RATE_DECIMALS``) is either
exactly a half-integer, which such a context represents exactly, or at least ``1 / (2 d)``
away from every half-integer, far more than the context's error on values below ``10**30``.

Everything here is in minor units, so the currency's exponent (JPY 0, EUR 2, KWD 3) never
enters the arithmetic: 100 JPY, 1.00 EUR and 0.100 KWD at 25 % each carry 20 minor units.
Rates are fractions (``0.25`` is 25 %), from 0 to 1, with at most ``MAX_RATE_DECIMALS``
decimals. Pure functions: no I/O, no dialect, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Context, Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Final, NamedTuple

from settle.grammar import plain
from settle.invoices.models import Invoice, LineInput, Tax
from settle.money import round_minor

MAX_RATE_DECIMALS: Final = 6
_RATE_STEP: Final = Decimal(1).scaleb(-MAX_RATE_DECIMALS)
_PRECISION: Final = 60
# Amounts this module is exact for (far above settle.money.MAX_MINOR times any quantity).
_MAX_ABS_UNIT: Final = 10**30


class LineAmounts(NamedTuple):
    """A line's figures, in minor units. ``unit_amount`` and ``amount`` include VAT."""

    unit_amount: int
    unit_amount_vat: int
    unit_amount_ex_vat: int
    amount: int
    amount_vat: int
    amount_ex_vat: int


class Totals(NamedTuple):
    amount: int
    amount_vat: int
    amount_ex_vat: int


def parse_rate(rate: Decimal | str | None) -> Decimal:
    """The rate as an exact Decimal (None is no VAT); a ValueError outside the rules above.
    Dialects check rates with their own error messages first: here it is a programming error."""
    if rate is None:
        return Decimal(0)
    try:
        value = Decimal(rate)
    except InvalidOperation:
        raise ValueError(f"a VAT rate is a decimal fraction, not {rate!r}") from None
    if not value.is_finite() or not 0 <= value <= 1:
        raise ValueError(f"a VAT rate is a fraction between 0 and 1, not {rate!r}")
    # Compared exactly, not counted on value.normalize(): that rounds to the context's 28
    # digits, and took 0.2500000000000000000000000000001 for 0.25 and 1E-999999999 for 0.
    if value != value.quantize(_RATE_STEP):
        raise ValueError(f"a VAT rate has at most {MAX_RATE_DECIMALS} decimals, not {rate!r}")
    return value


def unit_vat(unit: int, rate: Decimal | str | None, *, incl_vat: bool) -> int:
    """The VAT of one unit of ``unit`` minor units (including VAT when ``incl_vat``)."""
    if abs(unit) >= _MAX_ABS_UNIT:
        raise ValueError("amount out of range")
    r = parse_rate(rate)
    if not r:
        return 0
    with localcontext(Context(prec=_PRECISION)):
        share = Decimal(unit) * r / (1 + r) if incl_vat else Decimal(unit) * r
    return round_minor(share)


# Pure, and called for every line each time an invoice is made or shown (Decimal division in a
# 60-digit context, ~8 us a line: nine calls for a 3-line invoice made through Reepay); a
# shop's catalogue repeats the same few lines.
@lru_cache(maxsize=4096)
def line_amounts(
    unit: int, quantity: int, rate: Decimal | str | None, *, incl_vat: bool = True
) -> LineAmounts:
    """The figures of a line of ``quantity`` units of ``unit`` minor units each (including VAT
    when ``incl_vat``, excluding it otherwise) at ``rate``."""
    if quantity < 0:
        raise ValueError("a quantity is not negative")
    vat = unit_vat(unit, rate, incl_vat=incl_vat)
    incl, ex = (unit, unit - vat) if incl_vat else (unit + vat, unit)
    return LineAmounts(
        unit_amount=incl,
        unit_amount_vat=vat,
        unit_amount_ex_vat=ex,
        amount=incl * quantity,
        amount_vat=vat * quantity,
        amount_ex_vat=ex * quantity,
    )


def of_line(line: LineInput) -> LineAmounts:
    """The figures of a domain line (a line without a rate carries no VAT)."""
    return line_amounts(line.amount, line.quantity, line.vat_rate, incl_vat=line.amount_incl_vat)


def totals(lines: Iterable[LineAmounts]) -> Totals:
    amount = vat = ex = 0
    for line in lines:
        amount += line.amount
        vat += line.amount_vat
        ex += line.amount_ex_vat
    return Totals(amount=amount, amount_vat=vat, amount_ex_vat=ex)


def invoice_totals(lines: Iterable[LineInput]) -> Totals:
    """An invoice's figures: the sums of its lines'."""
    return totals(of_line(line) for line in lines)


def carry_rates(lines: Iterable[LineInput]) -> bool:
    """Whether these lines state their VAT (a Reepay order line with ``vat``): then they, not
    any tax stated beside them, are the VAT of the invoice."""
    return any(line.vat_rate is not None for line in lines)


def included_vat(invoice: Invoice) -> int:
    """The VAT included in the invoice's amount: its lines' where they carry rates, else the
    tax an invoice of the ProcessOut dialect states (``tax.amount``), else none."""
    if carry_rates(invoice.lines):
        return invoice_totals(invoice.lines).amount_vat
    tax = invoice.terms.tax
    return tax.amount if tax is not None and tax.amount is not None else 0


def lines_tax(lines: Sequence[LineInput]) -> Tax | None:
    """The tax that lines carrying VAT rates state, as one figure (None: they carry none).

    ``amount``: the sum of the lines' VAT, each by the one rounding rule above (never the
    invoice total times a rate, which rounds differently). ``rate``: a percentage ("25" for
    0.25), the Tax's unit, when every line has the same rate, else None: one rate applied to
    an amount whose lines are taxed differently would not give its VAT. A line without a rate
    carries no VAT, which is a rate of 0 beside the others (the Reepay dialect shows it so)."""
    if not carry_rates(lines):
        return None
    rates = {parse_rate(line.vat_rate) for line in lines}  # "0.25" and "0.250" are one rate
    # Exact: a rate has at most MAX_RATE_DECIMALS decimals, far within the context's digits.
    rate = plain(rates.pop() * 100) if len(rates) == 1 else None
    return Tax(amount=invoice_totals(lines).amount_vat, rate=rate)


def stated_tax(invoice: Invoice) -> Tax | None:
    """The tax included in the invoice's amount as one figure, for a dialect that shows it so
    (ProcessOut's ``tax``): its lines' where they carry rates (``lines_tax``), else the tax
    stated when it was made or changed (ProcessOut's own), else None. Agrees with
    ``included_vat``, so both dialects show the same VAT of one invoice."""
    from_lines = lines_tax(invoice.lines)
    return invoice.terms.tax if from_lines is None else from_lines


def vat_share(part: int, amount: int, amount_vat: int) -> int:
    """The VAT of ``part`` minor units of an amount of ``amount`` that includes ``amount_vat``
    of VAT, in proportion: ``round_half_even(part * amount_vat / amount)`` (0 of an amount of 0).

    Exact for the same reason as ``unit_vat``: the true quotient's denominator is ``amount``
    (below 10**30), so it is a half-integer exactly or at least ``1 / (2 amount)`` away from
    one, and the context's error on values below 10**30 is far smaller. Used cumulatively
    (the share of a running total minus the share of the total before), shares of parts that
    add up to the amount add up to exactly its VAT."""
    if amount <= 0:
        return 0
    if not (0 <= part < _MAX_ABS_UNIT and abs(amount_vat) < _MAX_ABS_UNIT):
        raise ValueError("amount out of range")
    with localcontext(Context(prec=_PRECISION)):
        share = Decimal(part) * amount_vat / amount
    return round_minor(share)

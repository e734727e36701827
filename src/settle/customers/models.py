"""The customer: one row whichever API created it (ProcessOut by id, Reepay by handle)."""

from __future__ import annotations

import msgspec


class Phone(msgspec.Struct, kw_only=True, omit_defaults=False):
    number: str | None = None
    dialing_code: str | None = None


# omit_defaults: a smaller event snapshot (see settle.invoices.models LineInput).
class CustomerFields(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Writable fields. ``None`` means "not given": on update the stored value stays."""

    handle: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    # The company's VAT registration number (Reepay's customer ``vat``), stored as given.
    vat: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country_code: str | None = None
    ip_address: str | None = None
    phone_number: str | None = None
    phone: Phone | None = None
    legal_document: str | None = None
    date_of_birth: str | None = None
    is_business: bool | None = None
    sex: str | None = None
    reference_id: str | None = None
    registered_at: int | None = None
    balance: int | None = None
    currency: str | None = None
    default_token_id: str | None = None
    metadata: dict[str, str] | None = None


class Customer(CustomerFields, kw_only=True):
    id: str
    project_id: str
    sandbox: bool
    created_at: int
    updated_at: int


FIELD_NAMES: tuple[str, ...] = CustomerFields.__struct_fields__

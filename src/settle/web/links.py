"""Where the pages are: built from settings alone, so any caller (an API answer, a webhook
body, a CLI command) gives the same link, with or without a live request."""

from __future__ import annotations

from settle.config import Settings
from settle.invoices.models import Invoice
from settle.projects.keys import processout_username


def checkout_url(settings: Settings, invoice: Invoice) -> str:
    """The hosted checkout page of ``invoice``."""
    project = processout_username(invoice.project_id, invoice.sandbox)
    return f"{settings.base_url}/checkout/{project}/{invoice.id}"

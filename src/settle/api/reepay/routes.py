"""The Reepay dialect's route table (handlers live in ``customers``, ``invoices``, ``lists``)."""

from __future__ import annotations

from functools import cache
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle.api.reepay import (
    charges,
    customers,
    deliveries,
    invoices,
    lists,
    payment_methods,
    refunds,
    settling,
    webhooks,
)
from settle.api.reepay import transactions as trs
from settle.api.reepay.errors import error_table
from settle.api.reepay.openapi import openapi_document


@cache
def _error_codes_body() -> bytes:
    return msgspec.json.encode(
        [{k: row[k] for k in ("code", "error", "http_status")} for row in error_table()]
    )


async def error_codes(request: Request) -> Response:
    """The vendor's numeric error code table (public, as the vendor's is)."""
    return Response(_error_codes_body(), media_type="application/json")


async def openapi(request: Request) -> Response:
    return Response(openapi_document(), media_type="application/json")


ROUTES: Final = [
    Route("/customer", customers.create_customer, methods=["POST"]),
    Route("/customer/{handle}", customers.get_customer, methods=["GET"]),
    Route("/customer/{handle}", customers.update_customer, methods=["PUT"]),
    Route("/customer/{handle}", customers.delete_customer, methods=["DELETE"]),
    Route("/customer/{handle}/invoice", invoices.create_invoice, methods=["POST"]),
    Route("/invoice/{id}", invoices.get_invoice, methods=["GET"]),
    Route("/invoice/{handle}/metadata", invoices.get_metadata, methods=["GET"]),
    Route("/invoice/{handle}/metadata", invoices.update_metadata, methods=["PUT"]),
    Route("/invoice/{handle}/metadata", invoices.delete_metadata, methods=["DELETE"]),
    Route("/invoice/{id}/billing_address", invoices.set_billing_address, methods=["PUT"]),
    Route("/invoice/{id}/shipping_address", invoices.set_shipping_address, methods=["PUT"]),
    Route("/invoice/{id}/settle", settling.settle_invoice, methods=["POST"]),
    Route("/invoice/{id}/settle/cancel", settling.cancel_settle_later, methods=["POST"]),
    Route("/invoice/{id}/manual_settle", settling.manual_settle, methods=["POST"]),
    Route("/invoice/{id}/cancel", settling.cancel_invoice, methods=["POST"]),
    Route("/invoice/{id}/fail", settling.fail_invoice, methods=["POST"]),
    Route("/invoice/{id}/reactivate", settling.reactivate_invoice, methods=["POST"]),
    Route("/invoice/{id}/transaction/{transaction}", trs.get_transaction, methods=["GET"]),
    Route("/customer/{handle}/payment_method", payment_methods.list_payment_methods),
    Route(
        "/customer/{handle}/payment_method",
        payment_methods.create_payment_method,
        methods=["POST"],
    ),
    Route("/charge", charges.create_charge, methods=["POST"]),
    Route("/charge/{handle}", charges.get_charge, methods=["GET"]),
    Route("/charge/{handle}/settle", charges.settle_charge, methods=["POST"]),
    Route("/charge/{handle}/cancel", charges.cancel_charge, methods=["POST"]),
    Route("/refund", refunds.create_refund, methods=["POST"]),
    Route("/refund/{id}", refunds.get_refund, methods=["GET"]),
    Route("/list/invoice", lists.list_invoices, methods=["GET"]),
    Route("/list/customer", lists.list_customers, methods=["GET"]),
    Route("/account/webhook_settings", webhooks.get_webhook_settings, methods=["GET"]),
    Route("/webhook", deliveries.list_webhooks, methods=["GET"]),
    Route("/webhook/{id}", deliveries.get_webhook, methods=["GET"]),
    Route("/webhook/{id}/request", deliveries.webhook_requests, methods=["GET"]),
    Route("/webhook/{id}/resend", deliveries.resend_webhook, methods=["POST"]),
    Route("/account/webhook_settings", webhooks.update_webhook_settings, methods=["PUT"]),
    Route("/error_codes", error_codes, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]

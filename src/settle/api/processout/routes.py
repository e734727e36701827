"""The ProcessOut dialect's route table (handlers live in ``invoices`` and ``customers``)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle.api.processout import cards, customers, events, invoices, payments, webhooks
from settle.api.processout.base import ok, start
from settle.api.processout.openapi import openapi_document


async def ping(request: Request) -> Response:
    """Authenticated no-op: the no-database ceiling of the stack (bench/)."""
    await start(request)
    return ok()


async def openapi(request: Request) -> Response:
    return Response(openapi_document(), media_type="application/json")


ROUTES: Final = [
    Route("/invoices", invoices.create_invoice, methods=["POST"]),
    Route("/invoices", invoices.list_invoices, methods=["GET"]),
    Route("/invoices/{invoice_id}", invoices.find_invoice, methods=["GET"]),
    Route("/invoices/{invoice_id}", invoices.update_invoice, methods=["PUT"]),
    Route("/invoices/{invoice_id}", invoices.delete_invoice, methods=["DELETE"]),
    Route("/invoices/{invoice_id}/customers", invoices.invoice_customer, methods=["GET"]),
    Route("/invoices/{invoice_id}/customers", invoices.assign_invoice_customer, methods=["POST"]),
    Route("/customers", customers.create_customer, methods=["POST"]),
    Route("/customers", customers.list_customers, methods=["GET"]),
    Route("/customers/{customer_id}", customers.find_customer, methods=["GET"]),
    Route("/customers/{customer_id}", customers.update_customer, methods=["PUT"]),
    Route("/customers/{customer_id}", customers.delete_customer, methods=["DELETE"]),
    Route("/customers/{customer_id}/transactions", payments.customer_transactions, methods=["GET"]),
    Route("/customers/{customer_id}/tokens", cards.create_token, methods=["POST"]),
    Route("/customers/{customer_id}/tokens", cards.list_tokens, methods=["GET"]),
    Route("/customers/{customer_id}/tokens/{token_id}", cards.find_token, methods=["GET"]),
    Route("/customers/{customer_id}/tokens/{token_id}", cards.update_token, methods=["PUT"]),
    Route("/customers/{customer_id}/tokens/{token_id}", cards.delete_token, methods=["DELETE"]),
    Route("/cards", cards.create_card, methods=["POST"]),
    Route("/cards", cards.list_cards, methods=["GET"]),
    Route("/cards/{card_id}", cards.find_card, methods=["GET"]),
    Route("/cards/{card_id}", cards.anonymize_card, methods=["DELETE"]),
    Route("/invoices/{invoice_id}/authorize", payments.authorize, methods=["POST"]),
    Route("/invoices/{invoice_id}/capture", payments.capture, methods=["POST"]),
    Route("/invoices/{invoice_id}/void", payments.void, methods=["POST"]),
    Route(
        "/invoices/{invoice_id}/increment_authorization",
        payments.increment_authorization,
        methods=["POST"],
    ),
    Route("/invoices/{invoice_id}/refunds", payments.refund_invoice, methods=["POST"]),
    Route("/invoices/{invoice_id}/transactions", payments.invoice_transaction, methods=["GET"]),
    Route("/transactions", payments.list_transactions, methods=["GET"]),
    Route("/transactions/{transaction_id}", payments.find_transaction, methods=["GET"]),
    Route("/transactions/{transaction_id}/refunds", payments.refund_transaction, methods=["POST"]),
    Route("/transactions/{transaction_id}/refunds", payments.list_refunds, methods=["GET"]),
    Route(
        "/transactions/{transaction_id}/refunds/{refund_id}", payments.find_refund, methods=["GET"]
    ),
    Route("/events", events.list_events, methods=["GET"]),
    Route("/events/{event_id}", events.find_event, methods=["GET"]),
    Route("/events/{event_id}/webhooks", webhooks.list_webhooks, methods=["GET"]),
    Route("/events/{event_id}/webhooks", webhooks.redeliver, methods=["POST"]),
    Route("/ping", ping, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]

"""The ProcessOut dialect's route table (handlers live in ``invoices`` and ``customers``)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from settle.api.processout import customers, invoices
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
    Route("/ping", ping, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]

"""The pages' applications, as ``settle.app`` mounts them: the hosted checkout under
``/checkout`` (with its stylesheet), the sandbox's 3-D Secure challenge under ``/3ds``."""

from __future__ import annotations

from starlette.routing import Route

from settle.web import checkout, three_d_s
from settle.web.pages import Pages


def checkout_app() -> Pages:
    return Pages(
        [
            # Before the page's route, which would take "static" for a project.
            Route("/static/checkout.css", checkout.stylesheet, methods=["GET"]),
            Route("/{project}/{invoice_id}", checkout.show, methods=["GET"]),
            Route("/{project}/{invoice_id}", checkout.pay, methods=["POST"]),
        ]
    )


def three_d_s_app() -> Pages:
    return Pages(
        [
            Route("/{operation_key}", three_d_s.show, methods=["GET"]),
            Route("/{operation_key}", three_d_s.decide, methods=["POST"]),
        ]
    )

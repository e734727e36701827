"""The sandbox's 3-D Secure challenge: the page a payer is sent to when the sandbox gateway
asks for a customer action (``{base_url}/3ds/{operation_key}``, see
settle.payments.sandbox), where they approve or refuse the payment, as they would at their
bank.

The operation key is the page's only name: random (``opk_`` and 24 random characters after
its time), it is known to the payer's browser and to Settle alone. The answer is given to the
sandbox (``decide``), and the pending operation finished from it (``recovery.resume``: the
authorization's outcome, then the sale's capture). The payer then goes where the checkout
would have sent them: its page, which shows the outcome (paid, and on to the invoice's
``return_url`` if any; or why not, with the form to try again).

Only the sandbox has this page: with another gateway, the challenge is the bank's, and this
address is a 404.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from settle.api.lifecycle import runtime_of
from settle.billing import recovery, states
from settle.ids import could_exist
from settle.payments import service as transactions
from settle.payments.gateway import OperationType
from settle.payments.models import Operation
from settle.payments.sandbox import SandboxGateway
from settle.projects.models import Scope
from settle.web import csrf
from settle.web.checkout import after_success, form_origins, load, succeeded
from settle.web.html import message_page
from settle.web.pages import forbidden, html_page, not_found, read_form, see_other
from settle.web.views import Checkout, challenge_page

MAX_KEY_LENGTH: Final = 100
DECISIONS: Final = {"approve": True, "refuse": False}


def _purpose(key: str) -> str:
    return f"3ds:{key}"


async def _find(request: Request) -> tuple[Operation, Checkout] | None:
    key = request.path_params["operation_key"]
    rt = runtime_of(request)
    if not isinstance(rt.gateway, SandboxGateway):
        return None
    if not key.startswith("opk_") or len(key) > MAX_KEY_LENGTH or not could_exist(key):
        return None
    async with rt.db.read() as tx:
        op = await transactions.get_operation(tx, key)
        if op is None:
            return None
        scope = Scope(project_id=op.project_id, sandbox=op.sandbox)
        transaction = await transactions.get_transaction(tx, scope, op.transaction_id)
        c = await load(tx, scope, transaction.invoice_id)
    return None if c is None else (op, c)


def _waiting(op: Operation) -> bool:
    return op.status == "pending" and bool(op.customer_action)


async def show(request: Request) -> Response:
    found = await _find(request)
    if found is None:
        return not_found()
    op, c = found
    if not _waiting(op):
        return see_other(c.path)  # answered already: the checkout shows the outcome
    key, new = csrf.key_for(request)
    action = f"/3ds/{op.operation_key}"
    content = challenge_page(c, action, csrf.token(key, _purpose(op.operation_key)))
    response = html_page(content, form_origins=form_origins(runtime_of(request).settings))
    if new:
        csrf.set_cookie(request, response, key)
    return response


async def decide(request: Request) -> Response:
    found = await _find(request)
    if found is None:
        return not_found()
    op, c = found
    here = f"/3ds/{op.operation_key}"
    form = await read_form(request)
    if not csrf.valid(request, form.get(csrf.FIELD), _purpose(op.operation_key)):
        return forbidden(here)
    approve = DECISIONS.get(form.get("decision", ""))
    if approve is None:
        page = message_page(
            "Choose Approve or Refuse",
            "The answer could not be read.",
            link=(here, "Back to the check"),
        )
        return html_page(page, 400)
    if not _waiting(op):
        return see_other(c.path)
    rt = runtime_of(request)
    gateway = rt.gateway
    assert isinstance(gateway, SandboxGateway)  # _find saw to it
    await gateway.decide(
        op.operation_key, approve=approve, amount=op.amount, kind=OperationType(op.type)
    )
    # A Reepay settle refused here fails its invoice, as a decline at the settle would have.
    done = await recovery.resume(rt.db, gateway, op.operation_key, after=states.recovered)
    if done is not None and succeeded(done):
        return after_success(c)
    return see_other(c.path)

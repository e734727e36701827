"""Finishing payment operations that did not finish in their own request: the payer's answer
to a 3-D Secure challenge (``resume``), the operations a crash left pending and the challenges
no payer answered in time (``recover``, run when the server starts and then every half minute),
each from what the gateway recorded for the operation's key.

An operation is written pending before the gateway is called and its outcome after
(settle.billing.payments); if Settle dies in between, the operation stays pending. Its key
makes asking the gateway safe: a gateway answers a key it saw as before, and one it never saw
(the crash came before the call) is sent now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from settle.billing.payments import (
    Attempt,
    Done,
    authorization_reference,
    execute,
    finish,
    lock_payment,
    request_of,
    run,
)
from settle.clock import now_us
from settle.db.database import Database, Tx
from settle.payments import service as transactions
from settle.payments.gateway import Gateway, GatewayUnavailable, Outcome
from settle.projects.models import Scope
from settle.unique import atomic

# A pending operation this old is left by a crash (or a gateway that never answered):
# recovery asks the gateway. Far above any gateway call's own timeout.
STALE_US: Final = 60 * 1_000_000
# A 3-D Secure challenge the payer has not answered this long is given up (the gateway
# declines it): a pending operation blocks every other on its transaction, so an abandoned
# challenge left its invoice unpayable by any card for good. Card schemes let a challenge run
# about 10 minutes.
CHALLENGE_US: Final = 600 * 1_000_000


async def attempt_of(tx: Tx, operation_key: str) -> Attempt | None:
    """The pending operation ``operation_key`` as an attempt to finish, or None."""
    op = await transactions.get_operation(tx, operation_key)
    if op is None or op.status != "pending":
        return None
    scope = Scope(project_id=op.project_id, sandbox=op.sandbox)
    transaction = await transactions.get_transaction(tx, scope, op.transaction_id)
    return Attempt(
        scope=scope,
        invoice_id=transaction.invoice_id,
        operation=op,
        card_reference=transaction.card_reference,
        parent_reference=authorization_reference(
            await transactions.operations_of(tx, op.transaction_id)
        ),
    )


async def outcome_of(tx: Tx, scope: Scope, operation_key: str) -> Done | None:
    """Where the payment that began with the operation ``operation_key`` ended (a sale's
    capture included), read under its invoice's lock; None while any of its operations is
    still pending. For a retry of a request that died before answering."""
    op = await transactions.get_operation(tx, operation_key)
    if op is None or op.project_id != scope.project_id or op.sandbox != scope.sandbox:
        return None
    transaction = await transactions.get_transaction(tx, scope, op.transaction_id)
    locked = await lock_payment(tx, scope, transaction.invoice_id)
    if any(o.status == "pending" for o in locked.log):
        return None
    current = next(o for o in locked.log if o.operation_key == operation_key)
    return Done(
        transaction=locked.transaction, operation=current, invoice=locked.invoice, log=locked.log
    )


# A rule that follows a gateway's answer outside this module, run in the transaction that
# writes an outcome ending its payment when no request is there to apply it (recovery, the
# payer's 3-D Secure answer): ``settle.billing.states.recovered``.
AfterFinish = Callable[[Tx, Done], Awaitable[object]]


async def resume(
    db: Database, gateway: Gateway, operation_key: str, *, after: AfterFinish | None = None
) -> Done | None:
    """Finish a pending operation from what the gateway recorded for it (after the payer's
    3-D Secure answer, or a crash); None if the gateway has no answer yet. ``after``: as
    ``recover``'s."""
    async with db.read() as tx:
        attempt = await attempt_of(tx, operation_key)
    if attempt is None:
        return None
    result = await gateway.lookup(operation_key)
    if result is None:
        return None
    async with atomic(db) as tx:
        step = await finish(tx, attempt, result)
        if after is not None and isinstance(step, Done):
            await after(tx, step)
    return step if isinstance(step, Done) else await run(db, gateway, step)


async def recover(
    db: Database,
    gateway: Gateway,
    *,
    older_than_us: int = STALE_US,
    challenge_us: int = CHALLENGE_US,
    after: AfterFinish | None = None,
) -> int:
    """Finish the operations a crash left pending, and the 3-D Secure challenges older than
    ``challenge_us`` that no payer answered (the gateway declines them); returns how many
    were finished.

    An operation the gateway never saw (the crash came before the call) is sent now: its key
    makes that safe, as the gateway answers a key it saw as before. ``after`` runs in the
    transaction that writes an outcome which ends its payment (no follow-up), as the dead
    request's own answer would have after ``finish``: the rules that follow a gateway's answer
    outside this module (``settle.billing.states.recovered``: a declined Reepay settle fails
    its invoice).
    """
    now = now_us()
    async with db.read() as tx:
        stale = await transactions.pending_operations(tx, now - older_than_us)
    finished = 0
    for op in stale:
        async with db.read() as tx:
            attempt = await attempt_of(tx, op.operation_key)
        if attempt is None:
            continue
        result = await gateway.lookup(op.operation_key)
        if result is None and op.customer_action is None:
            result = await execute(gateway, attempt)
        elif result is None and op.created_at < now - challenge_us:
            try:
                result = await gateway.expire(request_of(attempt))
            except GatewayUnavailable:
                continue  # asked again next time
        if result is None or result.outcome is Outcome.ACTION_REQUIRED:
            continue  # the payer has not answered the challenge yet
        async with atomic(db) as tx:
            step = await finish(tx, attempt, result)
            if after is not None and isinstance(step, Done):
                await after(tx, step)
        if isinstance(step, Attempt):
            await run(db, gateway, step)
        finished += 1
    return finished

"""The sandbox gateway: test card numbers with scripted outcomes, and a durable memory.

Every test card and what it does is in ``TEST_CARDS``, the one table (the reference's list of
sandbox cards); any other number is vaulted and declined. The gateway keeps its own tables, as
a real one keeps its own systems: the vault (a reference -> the card's behaviour; never the
number) and every operation's outcome by its key, so the same key always gets the same
answer and ``lookup`` can tell what became of an operation whose answer Settle lost in a
crash. It writes them in database transactions of its own, never in the caller's.

3-D Secure (``three_d_s``): an authorization answers ``action_required`` with a redirect to
Settle's own challenge page (``/3ds/{key}``), where the payer approves or refuses; ``decide``
records that as the operation's outcome, which ``lookup`` then reports.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Final, Literal

import msgspec

from settle.clock import now_us
from settle.db.codec import dump_json, load_json
from settle.db.database import Database
from settle.ids import random_token
from settle.payments.gateway import (
    CardData,
    CustomerAction,
    OperationRequest,
    OperationResult,
    OperationType,
    Outcome,
    VaultedCard,
)

Behaviour = Literal[
    "succeed",
    "decline",
    "decline_capture",
    "fail_cvc",
    "fail_avs",
    "fail_cvc_avs",
    "chargeback",
    "three_d_s",
    "no_three_d_s",
]


class TestCard(msgspec.Struct, frozen=True):
    scheme: str
    behaviour: Behaviour


# The reference's sandbox cards (shared/reference/processout/README.md). Expiry and CVC are
# not checked by the sandbox; any other number is declined.
TEST_CARDS: Final[dict[str, TestCard]] = {
    "4242424242424242": TestCard("visa", "succeed"),
    "5555555555554444": TestCard("mastercard", "succeed"),
    "378282246310005": TestCard("american express", "succeed"),
    "30123456789019": TestCard("diners club", "succeed"),
    "3530111333300000": TestCard("jcb", "succeed"),
    "6011111111111117": TestCard("discover", "succeed"),
    "4000000000000101": TestCard("visa", "three_d_s"),
    "4000000000000119": TestCard("visa", "no_three_d_s"),
    "4000000000000002": TestCard("visa", "decline"),
    "4000000000000010": TestCard("visa", "decline_capture"),
    "4000000000000028": TestCard("visa", "fail_cvc"),
    "4000000000000036": TestCard("visa", "fail_avs"),
    "4000000000000044": TestCard("visa", "fail_cvc_avs"),
    "4000000000000069": TestCard("visa", "chargeback"),
}
# What an authorization reports of the checks, per behaviour (others: both passed).
_CHECKS: Final[dict[Behaviour, tuple[str, str]]] = {
    "fail_cvc": ("failed", "passed"),
    "fail_avs": ("passed", "failed"),
    "fail_cvc_avs": ("failed", "failed"),
}
DECLINED: Final = "card.declined"
CAPTURE_DECLINED: Final = "gateway.declined"
THREE_D_S_FAILED: Final = "card.failed-three-d-s"


def behaviour_of(number: str) -> Behaviour:
    card = TEST_CARDS.get(number)
    return "decline" if card is None else card.behaviour


class SandboxGateway:
    name = "sandbox"

    def __init__(
        self, db: Database, base_url: str, *, answer_delay: float = 0.0, call_delay: float = 0.0
    ) -> None:
        self._db = db
        self._base_url = base_url.rstrip("/")
        # Seconds between recording an outcome and answering it (settings.
        # sandbox_answer_delay_ms): the answer's trip back over the network, the window in
        # which a crash leaves an operation the gateway did but Settle never heard of.
        self._answer_delay = answer_delay
        # Likewise before it acts (the request's trip there): the window in which Settle has
        # written an operation pending that the gateway has not seen yet.
        self._call_delay = call_delay
        # A vaulted card's behaviour never changes: kept after the first read (bounded).
        self._behaviours: dict[str, Behaviour] = {}

    async def vault(self, card: CardData) -> VaultedCard:
        reference = "sbxcard_" + random_token(24)
        behaviour = behaviour_of(card.number)
        async with self._db.write() as tx:
            await tx.execute(
                "INSERT INTO sandbox_vault (reference, behaviour, created_at) VALUES ($1, $2, $3)",
                reference,
                behaviour,
                now_us(),
            )
        self._remember(reference, behaviour)  # this worker's next call on it reads nothing
        return VaultedCard(reference=reference)

    def _remember(self, reference: str, behaviour: Behaviour) -> None:
        if len(self._behaviours) >= 100_000:
            self._behaviours.clear()
        self._behaviours[reference] = behaviour

    async def _behaviour(self, reference: str | None) -> Behaviour:
        if reference is None:
            return "decline"
        known = self._behaviours.get(reference)
        if known is not None:
            return known
        async with self._db.read(one_statement=True) as tx:
            found = await tx.fetchval(
                "SELECT behaviour FROM sandbox_vault WHERE reference = $1", reference
            )
        if found is None:
            return "decline"
        self._remember(reference, found)
        return found  # type: ignore[no-any-return]

    async def lookup(self, key: str) -> OperationResult | None:
        async with self._db.read(one_statement=True) as tx:
            raw = await tx.fetchval(
                "SELECT outcome FROM sandbox_operations WHERE operation_key = $1", key
            )
        return None if raw is None else msgspec.convert(load_json(raw), OperationResult)

    async def _record(self, request: OperationRequest, result: OperationResult) -> OperationResult:
        """Keep ``result`` as the answer for the key; the first answer recorded wins (a
        concurrent call with the same key, or a retry, gets that one)."""
        async with self._db.write(one_statement=True) as tx:
            inserted = await tx.fetchval(
                "INSERT INTO sandbox_operations (operation_key, kind, amount, outcome, created_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (operation_key) DO NOTHING"
                " RETURNING operation_key",
                request.key,
                request.type.value,
                request.amount,
                dump_json(msgspec.to_builtins(result)),
                now_us(),
            )
        if inserted is not None:
            return result
        recorded = await self.lookup(request.key)
        return recorded if recorded is not None else result

    def _reference(self, key: str) -> str:
        # Stable per key: a retried call reports the same reference.
        return "sbx_" + hashlib.sha256(key.encode()).hexdigest()[:24]

    async def execute(self, request: OperationRequest) -> OperationResult:
        if self._call_delay > 0:
            await asyncio.sleep(self._call_delay)
        result = await self._execute(request)
        if self._answer_delay > 0:
            await asyncio.sleep(self._answer_delay)
        return result

    async def _execute(self, request: OperationRequest) -> OperationResult:
        behaviour = await self._behaviour(request.card_reference)
        if behaviour == "three_d_s":
            # The payer's decision may be recorded already, and a challenge is not: look
            # first. Every other answer is recorded by _record, which finds an earlier one
            # for the same key (a retry) and answers with it (one statement fewer).
            known = await self.lookup(request.key)
            if known is not None:
                return known
        ok = OperationResult(outcome=Outcome.SUCCEEDED, reference=self._reference(request.key))
        kind = request.type
        if kind is OperationType.AUTHORIZATION:
            if behaviour == "decline":
                result = OperationResult(
                    outcome=Outcome.DECLINED,
                    reference=ok.reference,
                    error_code=DECLINED,
                    error_message="The card was declined.",
                )
            elif behaviour == "three_d_s":
                # Not recorded: the payer's decision on the challenge page is the outcome.
                return OperationResult(
                    outcome=Outcome.ACTION_REQUIRED,
                    reference=ok.reference,
                    three_d_s_status="pending",
                    customer_action=CustomerAction(
                        type="redirect", value=f"{self._base_url}/3ds/{request.key}"
                    ),
                )
            else:
                cvc, avs = _CHECKS.get(behaviour, ("passed", "passed"))
                result = msgspec.structs.replace(
                    ok,
                    cvc_check=cvc,
                    avs_check=avs,
                    three_d_s_status="unsupported" if behaviour == "no_three_d_s" else None,
                )
        elif kind is OperationType.CAPTURE and behaviour == "decline_capture":
            result = OperationResult(
                outcome=Outcome.DECLINED,
                reference=ok.reference,
                error_code=CAPTURE_DECLINED,
                error_message="The acquirer declined the capture.",
            )
        elif kind is OperationType.CAPTURE and behaviour == "chargeback":
            result = msgspec.structs.replace(ok, dispute_follows=True)
        else:
            result = ok
        return await self._record(request, result)

    async def expire(self, request: OperationRequest) -> OperationResult:
        """The challenge of ``request`` went unanswered for too long: refused, unless the
        payer's answer was recorded first (``_record``: the first answer for a key wins, so a
        payer answering as it expires gets one outcome, whichever came first)."""
        return await self._record(
            request,
            OperationResult(
                outcome=Outcome.DECLINED,
                reference=self._reference(request.key),
                error_code=THREE_D_S_FAILED,
                error_message="The payer did not complete 3-D Secure in time.",
                three_d_s_status="failed",
            ),
        )

    async def decide(self, key: str, *, approve: bool, amount: int, kind: OperationType) -> None:
        """The payer's answer to the 3-D Secure challenge of the operation ``key``."""
        result = OperationResult(
            outcome=Outcome.SUCCEEDED if approve else Outcome.DECLINED,
            reference=self._reference(key),
            error_code=None if approve else THREE_D_S_FAILED,
            error_message=None if approve else "The payer did not pass 3-D Secure.",
            cvc_check="passed" if approve else None,
            avs_check="passed" if approve else None,
            three_d_s_status="success" if approve else "failed",
        )
        request = OperationRequest(
            key=key, type=kind, amount=amount, currency="", card_reference=None
        )
        await self._record(request, result)

"""``SandboxGateway`` on each backend: every test card does what ``TEST_CARDS`` says through
vault + execute, the same key always gets the same answer, ``lookup`` tells what became of a
key, and a 3-D Secure authorization waits for ``decide``."""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec
import pytest

from settle.db.database import Database
from settle.ids import new_id
from settle.payments.gateway import (
    CardData,
    CustomerAction,
    OperationRequest,
    OperationResult,
    OperationType,
    Outcome,
)
from settle.payments.sandbox import CAPTURE_DECLINED, DECLINED, TEST_CARDS, SandboxGateway
from tests.domain_fixtures import (  # noqa: F401
    SANDBOX_BASE_URL,
    domain_db_fixture,
    fetchval,
    gateway_fixture,
)

T = OperationType
FOLLOW_UPS: Final = (T.CAPTURE, T.VOID, T.REFUND, T.INCREMENT)


def by_behaviour(*behaviours: str) -> list[str]:
    return sorted(n for n, c in TEST_CARDS.items() if c.behaviour in behaviours)


SUCCEEDING: Final = by_behaviour("succeed")
# Authorized with a plain success: the checks passed, no 3-D Secure.
PLAIN: Final = by_behaviour("succeed", "decline_capture", "chargeback")


async def vault(gateway: SandboxGateway, number: str) -> str:
    card = CardData(number=number, exp_month=12, exp_year=2035, cvc="123")
    return (await gateway.vault(card)).reference


def request(
    reference: str | None,
    kind: OperationType = T.AUTHORIZATION,
    *,
    amount: int = 4999,
    key: str | None = None,
    parent: str | None = None,
) -> OperationRequest:
    return OperationRequest(
        key=key or new_id("opk_"),
        type=kind,
        amount=amount,
        currency="EUR",
        card_reference=reference,
        parent_reference=parent,
    )


async def recorded_rows(db: Database, key: str) -> int:
    return int(
        await fetchval(db, "SELECT count(*) FROM sandbox_operations WHERE operation_key = $1", key)
    )


def ok(result: OperationResult) -> None:
    assert result.outcome is Outcome.SUCCEEDED
    assert result.reference is not None and result.reference.startswith("sbx_")
    assert result.error_code is None and result.error_message is None
    assert result.customer_action is None


# --- every test card ------------------------------------------------------------------------


@pytest.mark.parametrize("number", PLAIN)
async def test_a_succeeding_card_authorizes_with_both_checks_passed(
    domain_db: Database, gateway: SandboxGateway, number: str
) -> None:
    asked = request(await vault(gateway, number))
    result = await gateway.execute(asked)
    ok(result)
    assert (result.cvc_check, result.avs_check) == ("passed", "passed")
    assert result.three_d_s_status is None and not result.dispute_follows
    assert await gateway.lookup(asked.key) == result
    assert await recorded_rows(domain_db, asked.key) == 1


@pytest.mark.parametrize("number", SUCCEEDING)
@pytest.mark.parametrize("kind", FOLLOW_UPS)
async def test_a_succeeding_card_captures_voids_refunds_and_increments(
    domain_db: Database, gateway: SandboxGateway, number: str, kind: OperationType
) -> None:
    reference = await vault(gateway, number)
    authorization = await gateway.execute(request(reference))
    result = await gateway.execute(request(reference, kind, parent=authorization.reference))
    ok(result)
    assert result.reference != authorization.reference
    assert not result.dispute_follows


@pytest.mark.parametrize("number", by_behaviour("decline"))
async def test_the_declined_card_is_declined_and_the_decline_recorded(
    domain_db: Database, gateway: SandboxGateway, number: str
) -> None:
    asked = request(await vault(gateway, number))
    result = await gateway.execute(asked)
    assert result.outcome is Outcome.DECLINED
    assert result.error_code == DECLINED == "card.declined"
    assert result.error_message and number not in result.error_message
    assert result.customer_action is None and result.cvc_check is None
    assert await gateway.lookup(asked.key) == result


async def test_the_capture_declining_card_authorizes_then_declines_the_capture(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    (number,) = by_behaviour("decline_capture")
    reference = await vault(gateway, number)
    authorization = await gateway.execute(request(reference))
    ok(authorization)
    capture = await gateway.execute(request(reference, T.CAPTURE, parent=authorization.reference))
    assert capture.outcome is Outcome.DECLINED
    assert capture.error_code == CAPTURE_DECLINED == "gateway.declined"
    # Only the capture is declined: the authorization can still be voided.
    ok(await gateway.execute(request(reference, T.VOID, parent=authorization.reference)))


async def test_the_chargeback_card_captures_with_a_dispute_to_follow(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    (number,) = by_behaviour("chargeback")
    reference = await vault(gateway, number)
    authorization = await gateway.execute(request(reference))
    ok(authorization)
    assert not authorization.dispute_follows
    capture = await gateway.execute(request(reference, T.CAPTURE, parent=authorization.reference))
    ok(capture)
    assert capture.dispute_follows
    refund = await gateway.execute(request(reference, T.REFUND, parent=authorization.reference))
    assert not refund.dispute_follows


@pytest.mark.parametrize(
    ("behaviour", "checks"),
    [
        ("fail_cvc", ("failed", "passed")),
        ("fail_avs", ("passed", "failed")),
        ("fail_cvc_avs", ("failed", "failed")),
    ],
)
async def test_the_check_failing_cards_authorize_and_report_their_checks(
    domain_db: Database, gateway: SandboxGateway, behaviour: str, checks: tuple[str, str]
) -> None:
    (number,) = by_behaviour(behaviour)
    reference = await vault(gateway, number)
    result = await gateway.execute(request(reference))
    ok(result)
    assert (result.cvc_check, result.avs_check) == checks
    ok(await gateway.execute(request(reference, T.CAPTURE, parent=result.reference)))


async def test_the_card_without_3ds_authorizes_and_says_3ds_is_unsupported(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    (number,) = by_behaviour("no_three_d_s")
    result = await gateway.execute(request(await vault(gateway, number)))
    ok(result)
    assert result.three_d_s_status == "unsupported"
    assert (result.cvc_check, result.avs_check) == ("passed", "passed")


def test_every_behaviour_is_tested_here() -> None:
    tested = {"succeed", "decline", "decline_capture", "chargeback", "three_d_s"}
    tested |= {"fail_cvc", "fail_avs", "fail_cvc_avs", "no_three_d_s"}
    assert {c.behaviour for c in TEST_CARDS.values()} == tested


# --- unknown cards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5105105105105100", "4000000000000077", "371449635398431"]
)
async def test_any_other_number_is_vaulted_and_declined(
    domain_db: Database, gateway: SandboxGateway, number: str
) -> None:
    assert number not in TEST_CARDS
    reference = await vault(gateway, number)
    asked = request(reference)
    result = await gateway.execute(asked)
    assert result.outcome is Outcome.DECLINED and result.error_code == DECLINED
    assert await gateway.lookup(asked.key) == result


@pytest.mark.parametrize("reference", [None, "sbxcard_unknown", ""])
async def test_an_unknown_card_reference_is_declined(
    domain_db: Database, gateway: SandboxGateway, reference: str | None
) -> None:
    result = await gateway.execute(request(reference))
    assert result.outcome is Outcome.DECLINED and result.error_code == DECLINED


async def test_the_vault_keeps_the_behaviour_never_the_number(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    number = "4000000000000028"
    reference = await vault(gateway, number)
    assert reference.startswith("sbxcard_") and number not in reference
    async with domain_db.read() as tx:
        row = await tx.fetchrow("SELECT * FROM sandbox_vault WHERE reference = $1", reference)
    assert row is not None and row["behaviour"] == "fail_cvc"
    assert all(number not in str(row[c]) for c in ("reference", "behaviour", "created_at"))
    assert await vault(gateway, number) != reference  # a new reference per vaulting


# --- the same key, the same answer ---------------------------------------------------------


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000000002", "4000000000000044"])
async def test_the_same_key_gets_the_same_answer(
    domain_db: Database, gateway: SandboxGateway, number: str
) -> None:
    asked = request(await vault(gateway, number))
    first = await gateway.execute(asked)
    assert await gateway.execute(asked) == first
    # Even if the retry differs (another amount, another card): the key decides.
    other = msgspec.structs.replace(
        asked, amount=1, card_reference=await vault(gateway, "4000000000000002")
    )
    assert await gateway.execute(other) == first
    assert await gateway.lookup(asked.key) == first
    assert await recorded_rows(domain_db, asked.key) == 1
    # Another key is another operation, with its own reference.
    again = await gateway.execute(request(asked.card_reference))
    assert again.outcome is first.outcome and again.reference != first.reference


async def test_concurrent_calls_with_one_key_get_one_answer(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    asked = request(await vault(gateway, "4242424242424242"))
    results = await asyncio.gather(*(gateway.execute(asked) for _ in range(6)))
    assert all(r == results[0] for r in results)
    ok(results[0])
    assert await recorded_rows(domain_db, asked.key) == 1


async def test_lookup_of_a_key_never_executed_is_none(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    assert await gateway.lookup(new_id("opk_")) is None
    assert await gateway.lookup("") is None


@pytest.mark.parametrize("kind", list(OperationType))
async def test_lookup_after_execute_returns_the_recorded_answer(
    domain_db: Database, gateway: SandboxGateway, kind: OperationType
) -> None:
    asked = request(await vault(gateway, "5555555555554444"), kind, amount=12_345)
    assert await gateway.lookup(asked.key) is None
    result = await gateway.execute(asked)
    assert await gateway.lookup(asked.key) == result
    async with domain_db.read() as tx:
        row = await tx.fetchrow(
            "SELECT kind, amount FROM sandbox_operations WHERE operation_key = $1", asked.key
        )
    assert row is not None and (row["kind"], row["amount"]) == (kind.value, 12_345)


# --- 3-D Secure -------------------------------------------------------------------------------

THREE_DS: Final = by_behaviour("three_d_s")[0]


async def challenged(gateway: SandboxGateway) -> tuple[OperationRequest, OperationResult]:
    asked = request(await vault(gateway, THREE_DS))
    result = await gateway.execute(asked)
    assert result.outcome is Outcome.ACTION_REQUIRED
    assert result.customer_action == CustomerAction(
        type="redirect", value=f"{SANDBOX_BASE_URL}/3ds/{asked.key}"
    )
    assert result.three_d_s_status == "pending" and result.error_code is None
    return asked, result


async def test_3ds_requires_action_until_the_payer_decides(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    asked, first = await challenged(gateway)
    # Not recorded: asking again still wants the payer, lookup knows nothing yet.
    assert await gateway.lookup(asked.key) is None
    assert await gateway.execute(asked) == first
    assert await recorded_rows(domain_db, asked.key) == 0


async def test_3ds_approved_is_the_outcome_lookup_and_execute_then_give(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    asked, challenge = await challenged(gateway)
    await gateway.decide(asked.key, approve=True, amount=asked.amount, kind=asked.type)
    decided = await gateway.lookup(asked.key)
    assert decided is not None
    ok(decided)
    assert decided.reference == challenge.reference
    assert decided.three_d_s_status == "success"
    assert (decided.cvc_check, decided.avs_check) == ("passed", "passed")
    assert await gateway.execute(asked) == decided
    assert await recorded_rows(domain_db, asked.key) == 1
    # The approved authorization captures like any other.
    ok(await gateway.execute(request(asked.card_reference, T.CAPTURE, parent=decided.reference)))


async def test_3ds_expired_is_a_decline_the_payer_cannot_undo(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    asked, _ = await challenged(gateway)
    expired = await gateway.expire(asked)
    assert expired.outcome is Outcome.DECLINED and expired.error_code == "card.failed-three-d-s"
    assert expired.three_d_s_status == "failed"
    await gateway.decide(asked.key, approve=True, amount=asked.amount, kind=asked.type)
    assert await gateway.lookup(asked.key) == expired  # the first answer stands
    assert await gateway.execute(asked) == expired
    assert await recorded_rows(domain_db, asked.key) == 1


async def test_3ds_answered_before_it_expires_keeps_the_answer(
    domain_db: Database, gateway: SandboxGateway
) -> None:
    asked, _ = await challenged(gateway)
    await gateway.decide(asked.key, approve=True, amount=asked.amount, kind=asked.type)
    ok(await gateway.expire(asked))
    assert await recorded_rows(domain_db, asked.key) == 1


async def test_3ds_refused_is_a_decline(domain_db: Database, gateway: SandboxGateway) -> None:
    asked, _ = await challenged(gateway)
    await gateway.decide(asked.key, approve=False, amount=asked.amount, kind=asked.type)
    decided = await gateway.lookup(asked.key)
    assert decided is not None and decided.outcome is Outcome.DECLINED
    assert decided.error_code == "card.failed-three-d-s"
    assert decided.three_d_s_status == "failed"
    assert await gateway.execute(asked) == decided


async def test_3ds_the_first_decision_stands(domain_db: Database, gateway: SandboxGateway) -> None:
    asked, _ = await challenged(gateway)
    await gateway.decide(asked.key, approve=False, amount=asked.amount, kind=asked.type)
    await gateway.decide(asked.key, approve=True, amount=asked.amount, kind=asked.type)
    decided = await gateway.lookup(asked.key)
    assert decided is not None and decided.outcome is Outcome.DECLINED
    assert await recorded_rows(domain_db, asked.key) == 1

"""GET /events/{id}/webhooks (the official client's ``Event.fetch_webhooks``) and POST to
redeliver, against a real receiver on a loopback port."""

from __future__ import annotations

import time
from typing import Any

import httpx
import processout

from tests.api.webhook_server import hook_server_fixture  # noqa: F401
from tests.conftest import RunningServer
from tests.events.receiver import Received, receiving
from tests.events.test_worker import readme_verify
from tests.faults.test_webhook_crash import set_url


def wait(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.02)


def test_every_attempt_is_listed_and_an_event_can_be_sent_again(
    hook_server: RunningServer,
) -> None:
    keys = hook_server.create_project()
    tries: dict[str, int] = {}

    def answer(request: Received, before: int) -> int:
        event_id = request.json()["event_id"]
        tries[event_id] = tries.get(event_id, 0) + 1
        return 500 if tries[event_id] == 1 else 200

    with receiving(answer) as receiver:
        secret = str(
            set_url(hook_server.database_url, keys.processout_username, receiver.url)["secret"]
        )
        auth = (keys.processout_username, keys.processout_password)
        with httpx.Client(base_url=hook_server.url, auth=auth, timeout=30) as client:
            created = client.post("/invoices", json={"name": "x", "amount": "2.00",
                                                     "currency": "EUR"}).json()  # fmt: skip
            (event,) = client.get("/events", params={"limit": 1}).json()["events"]
            assert event["name"] == "invoice.created"
            assert event["data"]["invoice"]["id"] == created["invoice"]["id"]
            wait(lambda: len(client.get(f"/events/{event['id']}/webhooks").json()["webhooks"]) == 2)
            answer_ = client.get(f"/events/{event['id']}/webhooks").json()
            assert answer_["success"] is True
            failed, delivered = answer_["webhooks"]
            assert (failed["response_code"], failed["success"], failed["status"]) == (500, False, 2)
            assert (delivered["response_code"], delivered["success"]) == (200, True)
            assert delivered["status"] == 1 and "error" not in delivered
            assert failed["request_url"] == receiver.url and failed["request_method"] == "POST"
            assert delivered["event_id"] == event["id"]

            # The official client reads the same.
            sdk = processout.ProcessOut(*auth)
            sdk.host = hook_server.url
            webhooks = sdk.new_event().find(event["id"]).fetch_webhooks()
            assert [w.response_code for w in webhooks] == [500, 200]
            assert [w.request_url for w in webhooks] == [receiver.url] * 2

            # Sent again on demand: a third attempt, signed afresh.
            again = client.post(f"/events/{event['id']}/webhooks")
            assert again.status_code == 200, again.text
            assert again.json() == {"success": True, "webhooks_pending": 1}
            wait(lambda: len(client.get(f"/events/{event['id']}/webhooks").json()["webhooks"]) == 3)
            missing = client.get("/events/ev_0000000000000000000000000000nope/webhooks")
            assert missing.status_code == 404
            assert missing.json()["error_type"] == "resource.event.not-found"
    verify = readme_verify()
    mine = [r for r in receiver.received if r.json()["event_id"] == event["id"]]
    assert [r.status for r in mine] == [500, 200, 200]
    assert all(verify(secret, r.headers["Settle-Signature"], r.body) for r in mine)

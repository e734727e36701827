"""A Reepay account's webhooks: listed with their state, read with their attempts, resent,
against a real receiver on a loopback port; every answer checked against the server's own
document (``reepay_client``)."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from tests.api.reepay.support import assert_error, new_customer, reepay_client
from tests.api.webhook_server import hook_server_fixture  # noqa: F401
from tests.conftest import RunningServer
from tests.events.receiver import Received, receiving


def wait(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.02)


def test_webhooks_are_listed_with_their_state_and_can_be_resent(
    hook_server: RunningServer,
) -> None:
    keys = hook_server.create_project()
    failing = {"on": True}

    def answer(request: Received, before: int) -> int:
        return 503 if failing["on"] else 200

    with receiving(answer) as receiver, reepay_client(hook_server, keys.reepay_private_key) as c:
        settings = c.put("/account/webhook_settings", json={"urls": [receiver.url]}).json()
        new_customer(c, "cust-hooks", email="h@example.com")

        def listed() -> list[dict[str, Any]]:
            content: list[dict[str, Any]] = c.get("/webhook").json()["content"]
            return content

        wait(lambda: bool(listed()) and listed()[0]["state"] == "retrying")
        (webhook,) = listed()
        assert webhook["event_type"] == "customer_created"
        assert webhook["url"] == receiver.url and webhook["count"] >= 1
        assert webhook["last_http_status"] == 503 and "first_fail" in webhook
        assert c.get("/webhook", params={"state": "completed"}).json()["content"] == []
        assert c.get("/webhook", params={"event": webhook["event"]}).json()["count"] == 1
        failing["on"] = False
        wait(lambda: c.get(f"/webhook/{webhook['id']}").json()["state"] == "completed")
        requests = c.get(f"/webhook/{webhook['id']}/request").json()
        assert [r["http_status"] for r in requests][-1] == 200
        assert all(r["http_status"] == 503 for r in requests[:-1])
        count = len(requests)
        resent = c.post(f"/webhook/{webhook['id']}/resend")
        assert resent.status_code == 200, resent.text
        wait(lambda: len(c.get(f"/webhook/{webhook['id']}/request").json()) == count + 1)
        assert_error(c.get("/webhook/whk_nope"), 404, 46)
        assert_error(c.post("/webhook/whk_nope/resend"), 404, 46)
        assert_error(c.get("/webhook", params={"state": "odd"}), 422, 1)
    bodies = [r.json() for r in receiver.received]
    assert {b["id"] for b in bodies} == {webhook["id"]}  # the same id on every attempt
    for body in bodies:
        assert body["event_type"] == "customer_created"
        assert body["customer"] == "cust-hooks"
        signed = (body["timestamp"] + body["id"]).encode()
        expected = hmac.new(settings["secret"].encode(), signed, hashlib.sha256).hexdigest()
        assert body["signature"] == expected

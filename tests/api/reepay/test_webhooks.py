"""Reepay webhook settings: GET and PUT /v1/account/webhook_settings, per project and mode."""

from __future__ import annotations

import httpx

from settle.projects.models import IssuedKeys
from tests.api.reepay.support import assert_error, reepay, reepay_client
from tests.conftest import RunningServer

__all__ = ["reepay"]

PATH = "/account/webhook_settings"


def settings(reepay: httpx.Client) -> dict[str, object]:
    r = reepay.get(PATH)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_unset_settings_send_nothing(reepay: httpx.Client) -> None:
    assert settings(reepay) == {"urls": [], "disabled": False, "secret": "", "event_types": []}


def test_put_sets_what_it_gives_and_keeps_the_rest(reepay: httpx.Client) -> None:
    r = reepay.put(
        PATH,
        json={
            "urls": ["https://example.com/hooks", "http://127.0.0.1:9000/h"],
            "event_types": ["invoice_settled", "customer_created", "invoice_settled"],
        },
    )
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["urls"] == ["https://example.com/hooks", "http://127.0.0.1:9000/h"]
    assert first["event_types"] == ["invoice_settled", "customer_created"]
    assert first["disabled"] is False
    secret = first["secret"]
    assert isinstance(secret, str) and len(secret) == 32 and secret.isalnum()
    assert settings(reepay) == first

    r = reepay.put(PATH, json={"urls": ["https://example.com/other"], "disabled": True})
    assert r.json() == {**first, "urls": ["https://example.com/other"], "disabled": True}
    r = reepay.put(PATH, json={"urls": [], "secret": "my-own-secret", "event_types": []})
    assert r.json() == {"urls": [], "disabled": True, "secret": "my-own-secret", "event_types": []}
    assert settings(reepay) == r.json()


def test_bad_settings_are_refused_and_change_nothing(reepay: httpx.Client) -> None:
    reepay.put(PATH, json={"urls": ["https://example.com/hooks"]})
    before = settings(reepay)
    body = assert_error(reepay.put(PATH, json={"urls": ["ftp://example.com/x"]}), 422, 1)
    assert "urls[0]" in body["message"]
    body = assert_error(
        reepay.put(PATH, json={"urls": [], "event_types": ["invoice_settled", "invoice_paid"]}),
        422,
        1,
    )
    assert "event_types[1]" in body["message"] and "invoice_paid" in body["message"]
    assert_error(reepay.put(PATH, json={"urls": [], "secret": "short"}), 422, 1)
    assert_error(reepay.put(PATH, json={"disabled": True}), 422, 1)  # urls is required
    assert_error(reepay.put(PATH, json={"urls": [], "username": "u"}), 501, 43)
    assert_error(reepay.put(PATH, json={"urls": ["https://x.test/"] * 11}), 422, 1)
    assert settings(reepay) == before


def test_each_project_and_mode_has_its_own(
    server: RunningServer, reepay: httpx.Client, project: IssuedKeys
) -> None:
    reepay.put(PATH, json={"urls": ["https://example.com/hooks"]})
    other = server.create_project()
    with reepay_client(server, other.reepay_private_key) as stranger:
        assert settings(stranger)["urls"] == []
        stranger.put(PATH, json={"urls": ["https://stranger.example/"]})
    assert settings(reepay)["urls"] == ["https://example.com/hooks"]

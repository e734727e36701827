"""The Reepay dialect is a face of its own under /v1: its error bodies, its 404s and 405s, its
Request-Id header and its OpenAPI document, while every other path keeps ProcessOut's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from settle.api.reepay.errors import error_table

REEPAY_ERROR_KEYS = {
    "code",
    "error",
    "message",
    "path",
    "timestamp",
    "http_status",
    "http_reason",
    "request_id",
}
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def assert_reepay_error(response: httpx.Response, status: int, code: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body: dict[str, object] = response.json()
    assert set(body) == REEPAY_ERROR_KEYS, body
    assert body["code"] == code
    assert body["http_status"] == status
    assert body["path"] == response.request.url.path
    assert isinstance(body["timestamp"], str) and _TIMESTAMP.match(body["timestamp"])
    assert body["request_id"] == response.headers["request-id"]
    assert "success" not in body and "error_type" not in body
    return body


def test_unknown_paths_under_v1_answer_in_reepay_shape(anon: httpx.Client) -> None:
    body = assert_reepay_error(anon.get("/v1/no-such-thing"), 404, 8)
    assert body["http_reason"] == "Not Found"
    assert body["error"] == "Not found"
    assert_reepay_error(anon.get("/v1/error_codes/"), 404, 8)


def test_a_method_a_v1_path_does_not_serve_answers_405_in_reepay_shape(anon: httpx.Client) -> None:
    response = anon.post("/v1/error_codes")
    assert_reepay_error(response, 405, 1)
    assert "GET" in response.headers["allow"]
    # Allow names every method some route serves at the path, not only the first route's.
    response = anon.post("/v1/customer/someone")
    assert_reepay_error(response, 405, 1)
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"


def test_every_v1_response_carries_a_request_id(anon: httpx.Client) -> None:
    ids = {anon.get("/v1/error_codes").headers["request-id"] for _ in range(5)}
    assert len(ids) == 5 and all(len(i) >= 16 for i in ids)


def test_the_error_code_table_is_the_vendors(anon: httpx.Client) -> None:
    shipped = error_table()
    # The copy shipped in the package is the vendor's table as gathered in shared/reference
    # (beside the repository, where a checkout has it).
    reference = Path(__file__).parents[4] / "shared/reference/reepay/error_codes.json"
    if reference.exists():
        assert shipped == json.loads(reference.read_text(encoding="utf-8"))
    got = anon.get("/v1/error_codes")
    assert got.status_code == 200
    assert got.json() == [
        {"code": row["code"], "error": row["error"], "http_status": row["http_status"]}
        for row in shipped
    ]


def test_the_dialect_serves_its_own_openapi_document(anon: httpx.Client) -> None:
    reepay = anon.get("/v1/openapi.json").json()
    processout = anon.get("/openapi.json").json()
    assert reepay["info"]["title"] != processout["info"]["title"]
    assert "/error_codes" in reepay["paths"]
    assert "/invoices" in processout["paths"] and "/invoices" not in reepay["paths"]


def test_processout_paths_keep_processout_errors(anon: httpx.Client) -> None:
    for response in (anon.get("/no-such-thing"), anon.get("/v1"), anon.get("/v2/customer")):
        assert response.status_code == 404
        assert response.json() == {
            "success": False,
            "error_type": "request.route.not-found",
            "message": "No such endpoint.",
        }
        assert "request-id" not in response.headers
    unauthenticated = anon.get("/invoices")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error_type"] == "request.authentication.missing"

"""Schemathesis hooks for the Reepay run (loaded through SCHEMATHESIS_HOOKS by
tests/api/test_schemathesis.py): its server-error check, with the vendor's one deliberate 5xx.

Reepay answers an option it does not implement with code 43, HTTP 501 "Not implemented" (its
own error table says so, and /v1 keeps the vendor's statuses). Settle refuses the vendor options
it does not act on that way rather than ignore them, so those 501s are answers, not failures;
every other 5xx, and a 501 with another body, still fails the run."""

from __future__ import annotations

from typing import Any

import schemathesis

NOT_IMPLEMENTED = 43


@schemathesis.check
def not_a_server_error_but_refusals(ctx: Any, response: Any, case: Any) -> bool | None:
    status = int(response.status_code)
    if status < 500:
        return None
    if status == 501:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("code") == NOT_IMPLEMENTED:
            return None
    raise AssertionError(f"Server error: {status} {response.text[:500]}")

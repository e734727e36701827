from __future__ import annotations

import re
import time
from collections import Counter

from settle.ids import new_id, random_token


def test_ids_are_a_prefix_and_32_alphanumerics() -> None:
    for prefix in ("iv_", "iv_det_", "cust_", "tr_", "proj_"):
        assert re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9]{32}", new_id(prefix))


def test_ids_sort_by_creation_time() -> None:
    earlier = new_id("iv_")
    time.sleep(0.003)
    assert new_id("iv_") > earlier


def test_ids_made_in_the_same_millisecond_differ() -> None:
    ids = [new_id("iv_") for _ in range(20_000)]
    assert len(set(ids)) == len(ids)


def test_secrets_are_uniform_over_the_alphabet() -> None:
    counts = Counter("".join(random_token(40) for _ in range(10_000)))
    assert set(counts) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    expected = 400_000 / 62
    # A byte taken modulo 62 would make 8 letters 21 % likelier than the others. 12 % is
    # about 10 standard deviations of honest sampling here: this never fails by chance.
    assert all(abs(n - expected) / expected < 0.12 for n in counts.values())

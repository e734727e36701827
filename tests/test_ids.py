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


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    """Random characters are drawn ahead in blocks: a child must not hand out the rest of its
    parent's block (uvicorn's workers, a CLI that forks)."""
    import os

    random_token(8)  # the parent has characters drawn and not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, random_token(32).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert len(child) == 32 and child != random_token(32)


def test_tokens_from_several_threads_never_share_characters() -> None:
    import threading

    made: list[str] = []

    def make() -> None:
        made.extend(random_token(32) for _ in range(2_000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == len(made) == 8_000

from __future__ import annotations

import pytest

from settle.db.sqlite import sqlite_path, to_sqlite


def test_parameters_keep_their_numbers() -> None:
    assert to_sqlite("SELECT $1, $12 FROM t WHERE a = $1") == "SELECT ?1, ?12 FROM t WHERE a = ?1"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///settle.db", "settle.db"),
        ("sqlite:///data/x.db", "data/x.db"),
        ("sqlite:////var/lib/settle.db", "/var/lib/settle.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path


def test_memory_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="file-backed"):
        sqlite_path("sqlite:///:memory:")

from __future__ import annotations

import pytest

from settle.config import Settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///settle.db"
    assert settings.render_cache_entries == 20_000


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLE_RENDER_CACHE_ENTRIES", "0")
    monkeypatch.setenv("SETTLE_PORT", "9999")
    settings = Settings.from_env(port=7000)
    assert settings.render_cache_entries == 0
    assert settings.port == 7000  # a flag wins over the environment
    assert settings.base_url == "http://127.0.0.1:7000"


def test_public_url_wins_for_links() -> None:
    assert Settings(public_url="https://pay.example.com/").base_url == "https://pay.example.com"

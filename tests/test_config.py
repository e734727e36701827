from __future__ import annotations

import pytest

from settle.config import Settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///settle.db"
    assert settings.render_cache_entries == 20_000
    assert settings.render_cache_bytes == 64 * 1024 * 1024
    assert settings.events_settle_seconds == 0.1


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLE_RENDER_CACHE_ENTRIES", "0")
    monkeypatch.setenv("SETTLE_RENDER_CACHE_BYTES", "8388608")
    monkeypatch.setenv("SETTLE_PORT", "9999")
    monkeypatch.setenv("SETTLE_EVENTS_SETTLE_SECONDS", "0.5")
    settings = Settings.from_env(port=7000)
    assert settings.events_settle_seconds == 0.5
    assert settings.render_cache_entries == 0
    assert settings.render_cache_bytes == 8 * 1024 * 1024
    assert settings.port == 7000  # a flag wins over the environment
    assert settings.base_url == "http://127.0.0.1:7000"


def test_public_url_wins_for_links() -> None:
    assert Settings(public_url="https://pay.example.com/").base_url == "https://pay.example.com"


def test_render_cache_bytes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLE_RENDER_CACHE_BYTES", "0")  # 0 turns the cache off
    assert Settings.from_env().render_cache_bytes == 0
    monkeypatch.setenv("SETTLE_RENDER_CACHE_BYTES", "lots")
    with pytest.raises(ValueError):
        Settings.from_env()


def test_the_app_builds_its_render_cache_with_the_byte_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from settle.api.processout.app import processout_app
    from settle.api.processout.cache import ENTRY_OVERHEAD, RenderCache

    monkeypatch.setenv("SETTLE_RENDER_CACHE_BYTES", str(16 * (1000 + ENTRY_OVERHEAD)))
    cache: RenderCache = processout_app(Settings.from_env()).state.render_cache
    for i in range(20):
        cache.put((f"iv_{i}", 1), b"x" * 1000)
    assert len(cache) == 16  # the bytes bound, not the 20,000 entries

"""Alembic migrations are the only way the schema changes: they must match the models."""

from __future__ import annotations

import json
import sqlite3
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine

from settle.db.database import connect
from settle.db.migrate import alembic_config, sync_url, upgrade
from settle.db.schema import include_object, metadata
from settle.invoices import service as invoices
from settle.invoices.models import InvoiceLine
from settle.projects.models import Scope
from tests.conftest import PG_URL
from tests.pgdb import fresh_database


def test_migrations_match_the_schema(database_url: str) -> None:
    upgrade(database_url)  # idempotent at head
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "include_object": include_object(conn.dialect.name)},
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def _lines_of_0016(conn: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in conn.execute(
            sa.text(
                "SELECT invoice_id, position, id, name, amount, quantity, vat_rate,"
                " amount_incl_vat, discount_amount, brand, marketplace_merchant_is_business,"
                " marketplace_merchant_created_at, metadata FROM invoice_lines"
                " ORDER BY invoice_id, position"
            )
        )
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_0017_moves_each_invoices_lines_into_its_row_and_back(
    backend: str, tmp_path: Path
) -> None:
    """An invoice's lines, once rows of ``invoice_lines``, read back through the service the
    same after 0017 put them in the invoice's row (in order, with their ids and every field,
    an invoice without lines included); downgrade makes the same rows again."""
    with ExitStack() as stack:
        if backend == "postgres":
            if not PG_URL:
                pytest.skip("PostgreSQL tests need SETTLE_TEST_DATABASE_URL")
            url = stack.enter_context(fresh_database(PG_URL, "settle_migration_0017"))
        else:
            url = f"sqlite:///{tmp_path / 'm.db'}"
        upgrade(url, "0016")
        engine = create_engine(sync_url(url))
        stack.callback(engine.dispose)
        invoice = {
            "project_id": "proj_1",
            "sandbox": True,
            "amount": 1234,
            "currency": "EUR",
            "state": "pending",
            "metadata": "{}",
            "attributes": "{}",
            "created_at": 1,
            "updated_at": 1,
        }
        lines = [
            # (invoice, position, id, name, amount, quantity, vat_rate, incl, discount, brand,
            #  is_business, merchant_created_at, metadata)
            ("iv_a", 0, "iv_det_1", "Shoes", 1000, 1, "0.25", True, 0, "Acme", None, None, "{}"),
            ("iv_a", 1, "iv_det_2", None, 78, 3, None, False, None, None, True, 7, '{"k":"v"}'),
            ("iv_b", 0, "iv_det_3", "Only", 5, 2, None, True, None, None, None, None, "{}"),
        ]
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO projects (id, name, created_at) VALUES ('proj_1', 'p', 1)")
            )
            for invoice_id in ("iv_a", "iv_b", "iv_c"):
                values = {**invoice, "id": invoice_id, "transaction_id": f"tr_{invoice_id}"}
                names = ", ".join(values)
                marks = ", ".join(f":{k}" for k in values)
                conn.execute(sa.text(f"INSERT INTO invoices ({names}) VALUES ({marks})"), values)
            for line in lines:
                conn.execute(
                    sa.text(
                        "INSERT INTO invoice_lines (invoice_id, position, id, name, amount,"
                        " quantity, vat_rate, amount_incl_vat, discount_amount, brand,"
                        " marketplace_merchant_is_business, marketplace_merchant_created_at,"
                        " metadata) VALUES (:i, :p, :id, :n, :a, :q, :v, :incl, :d, :b, :mb,"
                        " :mc, :m)"
                    ),
                    dict(
                        zip(
                            ("i", "p", "id", "n", "a", "q", "v", "incl", "d", "b", "mb", "mc", "m"),
                            line,
                            strict=True,
                        )
                    ),
                )
            before = _lines_of_0016(conn)
        upgrade(url, "0017")
        database = await connect(url)
        try:
            async with database.read() as tx:
                found = await invoices.get_invoices(
                    tx, Scope(project_id="proj_1", sandbox=True), ["iv_a", "iv_b", "iv_c"]
                )
        finally:
            await database.close()
        assert found["iv_a"].lines == [
            InvoiceLine(
                id="iv_det_1",
                name="Shoes",
                amount=1000,
                vat_rate="0.25",
                discount_amount=0,
                brand="Acme",
            ),
            InvoiceLine(
                id="iv_det_2",
                amount=78,
                quantity=3,
                amount_incl_vat=False,
                marketplace_merchant_is_business=True,
                marketplace_merchant_created_at=7,
                metadata={"k": "v"},
            ),
        ]
        assert found["iv_b"].lines == [
            InvoiceLine(id="iv_det_3", name="Only", amount=5, quantity=2)
        ]
        assert found["iv_c"].lines == []
        downgrade(alembic_config(url), "0016")
        with engine.connect() as conn:
            after = _lines_of_0016(conn)
        assert [row[:-1] for row in after] == [row[:-1] for row in before]
        assert [json.loads(r[-1]) if isinstance(r[-1], str) else r[-1] for r in after] == [
            json.loads(r[-1]) if isinstance(r[-1], str) else r[-1] for r in before
        ]


def _events_of(conn: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in conn.execute(
            sa.text(
                "SELECT seq, id, project_id, sandbox, type, object_type, object_id, order_key,"
                " invoice_id, customer_id, transaction_id, data, fired_at FROM events ORDER BY seq"
            )
        )
    ]


def _insert_event(conn: Connection, event_id: str) -> int:
    conn.execute(
        sa.text(
            "INSERT INTO events (id, project_id, sandbox, type, object_type, object_id,"
            " order_key, invoice_id, data, fired_at) VALUES (:id, 'proj_1', true,"
            " 'invoice.created', 'invoice', 'iv_a', 'iv_a', 'iv_a', '{}', 1)"
        ),
        {"id": event_id},
    )
    seq = conn.execute(sa.text("SELECT seq FROM events WHERE id = :id"), {"id": event_id})
    return int(seq.scalar_one())


def test_0020_keeps_every_event_and_its_seq_on_sqlite_and_back(tmp_path: Path) -> None:
    """0020 rebuilds SQLite's events table without AUTOINCREMENT: every event keeps its seq and
    every field, a new event still numbers after the newest, the table's foreign key and unique
    id still hold; downgrade restores AUTOINCREMENT with its counter past the newest seq."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0019")
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO projects (id, name, created_at) VALUES ('proj_1', 'p', 1)")
            )
            for n in range(5):
                _insert_event(conn, f"ev_{n}")
            # A gap, as a rolled-back insert leaves none but AUTOINCREMENT may show.
            conn.execute(sa.text("DELETE FROM events WHERE id = 'ev_2'"))
            before = _events_of(conn)
        upgrade(url, "0020")
        with engine.begin() as conn:
            assert _events_of(conn) == before
            table = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'events'")
            ).scalar_one()
            assert "AUTOINCREMENT" not in table
            assert _insert_event(conn, "ev_new") == before[-1][0] + 1
            # The unique id still holds.
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                _insert_event(conn, "ev_new")
            after = _events_of(conn)
        # No foreign key to projects any more (checked with them on, as Settle's connections
        # do): an event's project was checked with the object it carries.
        assert _insert_checked(tmp_path / "m.db", "ev_x") is None
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM events WHERE id = 'ev_x'"))
        downgrade(alembic_config(url), "0019")
        with engine.begin() as conn:
            assert _events_of(conn) == after
            conn.execute(sa.text("DELETE FROM events WHERE id = 'ev_new'"))
            # AUTOINCREMENT again: the deleted newest number is not handed out twice.
            assert _insert_event(conn, "ev_later") == after[-1][0] + 1
        # ... and the foreign key is back.
        refused = _insert_checked(tmp_path / "m.db", "ev_y")
        assert refused is not None and "FOREIGN KEY" in refused
    finally:
        engine.dispose()


def _insert_checked(path: Path, event_id: str) -> str | None:
    """Insert an event of no project with SQLite's foreign keys on; the error if refused."""
    checked = sqlite3.connect(path)
    try:
        checked.execute("PRAGMA foreign_keys = ON")
        with checked:
            checked.execute(
                "INSERT INTO events (id, project_id, sandbox, type, object_type, object_id,"
                " order_key, data, fired_at) VALUES (?, 'proj_none', 1, 't',"
                " 'invoice', 'o', 'o', '{}', 1)",
                (event_id,),
            )
    except sqlite3.IntegrityError as exc:
        return str(exc)
    finally:
        checked.close()
    return None


def _events_indexes(conn: Connection) -> set[str]:
    return set(
        conn.execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")
        ).scalars()
    )


def test_0021_gives_postgresql_events_their_transaction_id_without_a_rewrite() -> None:
    """0021 on PostgreSQL: events made before it get xid 0 (all committed, they sort first)
    without the table being rewritten (its file stays the same), a new event gets its
    transaction's id, the list's index is (project_id, sandbox, xid, seq); downgrade restores
    the column-less table and the old index, every event kept."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SETTLE_TEST_DATABASE_URL")
    with fresh_database(PG_URL, "settle_migration_0021") as url:
        upgrade(url, "0020")
        engine = create_engine(sync_url(url))
        try:
            with engine.begin() as conn:
                for n in range(3):
                    _insert_event(conn, f"ev_{n}")
                before = _events_of(conn)
                file = conn.execute(sa.text("SELECT pg_relation_filenode('events')")).scalar()
            upgrade(url, "0021")
            with engine.begin() as conn:
                assert _events_of(conn) == before
                assert (
                    conn.execute(sa.text("SELECT pg_relation_filenode('events')")).scalar() == file
                )
                assert conn.execute(sa.text("SELECT DISTINCT xid::text FROM events")).all() == [
                    ("0",)
                ]
                _insert_event(conn, "ev_new")
                mine, stored = conn.execute(
                    sa.text(
                        "SELECT pg_current_xact_id()::text, xid::text FROM events"
                        " WHERE id = 'ev_new'"
                    )
                ).one()
                assert mine == stored != "0"
                assert _events_indexes(conn) >= {"ix_events_project_id_sandbox_xid_seq"}
                assert "ix_events_project_id_sandbox_seq" not in _events_indexes(conn)
                after = _events_of(conn)
            downgrade(alembic_config(url), "0020")
            with engine.begin() as conn:
                assert _events_of(conn) == after
                columns = conn.execute(
                    sa.text(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'events' AND column_name = 'xid'"
                    )
                ).all()
                assert columns == []
                assert "ix_events_project_id_sandbox_seq" in _events_indexes(conn)
                assert "ix_events_project_id_sandbox_xid_seq" not in _events_indexes(conn)
        finally:
            engine.dispose()

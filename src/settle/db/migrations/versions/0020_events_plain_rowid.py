"""events: a plain rowid on SQLite and no foreign key; deliveries: no index on event_id

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 05:00:00

Both cut what an event costs the request that records it and the loop that fans it out.

SQLite: ``events.seq`` was ``INTEGER PRIMARY KEY AUTOINCREMENT``, so every insert also read
and rewrote the table's row in ``sqlite_sequence`` (a table of its own, one more page in every
commit's WAL). Measured in process (bench/outbox_cost.py, the bench invoice, 4 rounds of 4,800
creates, twice): the event row cost a create +26 and +36 us with AUTOINCREMENT, +17 and +20 us
without. AUTOINCREMENT only differs from a plain rowid when the table's newest row is deleted
(a plain rowid would hand its number out again); events are never deleted, and a number left
by a rolled-back insert was never seen by anyone. The table is rebuilt (SQLite has no ALTER
for it): every event is copied once, in this migration's transaction.

Both backends: ``events`` loses its foreign key to ``projects``. An event is written in the
transaction of the change it describes, with the project id of the object it carries, whose
own row was checked against ``projects`` (and projects are never deleted): the check only
repeated one already made, and on PostgreSQL it is a trigger running a query per row
(measured with bench/outbox_cost.py, one create per transaction, 4 rounds of 1,600:
PostgreSQL's CPU per create 287.5 us with it, 268.7 us without; 237.5 us with no event).

Both backends: ``ix_deliveries_event_id`` served one query only, an event's delivery
attempts, which now finds the deliveries by the event's seq (the unique (event_seq, dialect,
url) index). One index fewer on every delivery row made by the fan-out and on each of its
non-HOT updates (measured on PostgreSQL, fanning out 3,200 events: 31-34 -> 28-31 us of
PostgreSQL's CPU per event).
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id TEXT NOT NULL, project_id TEXT NOT NULL, sandbox BOOLEAN NOT NULL, type TEXT NOT NULL,"
    " object_type TEXT NOT NULL, object_id TEXT NOT NULL, order_key TEXT NOT NULL,"
    " invoice_id TEXT, customer_id TEXT, transaction_id TEXT, data TEXT NOT NULL,"
    " fired_at BIGINT NOT NULL, CONSTRAINT uq_events_id UNIQUE (id)"
)
_FOREIGN_KEY = (
    "CONSTRAINT fk_events_project_id_projects FOREIGN KEY(project_id) REFERENCES projects (id)"
)
_NAMES = (
    "seq, id, project_id, sandbox, type, object_type, object_id, order_key, invoice_id,"
    " customer_id, transaction_id, data, fired_at"
)


def _rebuild_events(seq: str, *, foreign_key: bool) -> None:
    """Copy ``events`` into a table whose ``seq`` column is declared as ``seq``."""
    constraints = f", {_FOREIGN_KEY}" if foreign_key else ""
    op.execute(f"CREATE TABLE events_rebuilt ({seq}, {_COLUMNS}{constraints})")
    op.execute(f"INSERT INTO events_rebuilt ({_NAMES}) SELECT {_NAMES} FROM events")
    op.execute("DROP TABLE events")  # no foreign key refers to it
    op.execute("ALTER TABLE events_rebuilt RENAME TO events")
    op.execute("CREATE INDEX ix_events_project_id_sandbox_seq ON events (project_id, sandbox, seq)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_events("seq INTEGER NOT NULL PRIMARY KEY", foreign_key=False)
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'events'")
    else:
        op.drop_constraint("fk_events_project_id_projects", "events", type_="foreignkey")
    op.drop_index("ix_deliveries_event_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_event_id", "deliveries", ["event_id"])
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_events("seq INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT", foreign_key=True)
    else:
        op.create_foreign_key(
            "fk_events_project_id_projects", "events", "projects", ["project_id"], ["id"]
        )

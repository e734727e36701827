"""events: the writing transaction's id on PostgreSQL, and the list's index on it

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 08:00:00

GET /events is polled with a cursor (``order=asc&start_after=<last id>``). On PostgreSQL an
event's ``seq`` is taken at its INSERT and the event becomes visible at its transaction's
COMMIT, so two transactions can commit in the opposite order of their seqs: a poller that read
seq 11 and moved past it never saw seq 10, committed after. ``xid`` (``pg_current_xact_id()``,
64 bits, never wrapping) lets the list order by (xid, seq) and show only events below the
oldest running transaction's id, which no event still to commit can precede
(settle.events.service).

Existing rows get xid 0: they were all committed before this migration (its ALTER waits for
every transaction using the table), so they sort first, in seq order. The column is added with
that constant default, which PostgreSQL (11+) keeps in the catalog without rewriting the table,
and the default then becomes the function, for new rows only. The list's index
(project_id, sandbox, seq) becomes (project_id, sandbox, xid, seq). SQLite is unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT '0'::xid8")
    op.execute("ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.create_index(
        "ix_events_project_id_sandbox_xid_seq", "events", ["project_id", "sandbox", "xid", "seq"]
    )
    op.drop_index("ix_events_project_id_sandbox_seq", table_name="events")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_events_project_id_sandbox_seq", "events", ["project_id", "sandbox", "seq"])
    op.drop_index("ix_events_project_id_sandbox_xid_seq", table_name="events")
    op.execute("ALTER TABLE events DROP COLUMN xid")

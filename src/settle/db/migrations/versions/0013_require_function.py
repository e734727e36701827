"""settle_require(): the check behind Tx.require on PostgreSQL

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-27 16:30:00

A statement that writes a customer's invoice must fail, writing nothing, if the customer is
no longer live when it runs (db/postgres.py, ``PostgresTx.require``). Plain SQL cannot raise
an error of its own choosing, so this function does: it answers true, or raises
``no_data_found`` (P0002) with the message ``settle_require`` and the failed check's index as
its detail. SQLite needs nothing: it checks at once.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None


# Also run by the storage contract tests (tests/db/test_database.py) on their own schema.
# The argument is not named "found": that is PL/pgSQL's own FOUND variable, which would shadow
# it (and be false) inside the function.
REQUIRE_FUNCTION = """
CREATE OR REPLACE FUNCTION settle_require(ok boolean, check_index text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = 'settle_require',
            DETAIL = check_index;
    END IF;
    RETURN true;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(REQUIRE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS settle_require(boolean, text)")

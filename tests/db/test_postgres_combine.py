from __future__ import annotations

import pytest

from settle.db.postgres import (
    UNNEST_MIN_ROWS,
    PostgresTx,
    batch,
    combine,
    deferrable,
    multirow,
    required,
    unnested,
)


def test_a_single_statement_is_unchanged() -> None:
    sql = "INSERT INTO a (x, y) VALUES ($1, $2)"
    assert combine((sql,)) == sql


def test_statements_are_chained_with_renumbered_parameters() -> None:
    combined = combine(
        (
            "INSERT INTO a (x, y) VALUES ($1, $2)",
            "INSERT INTO b (x) VALUES ($1)",
            "INSERT INTO c (x, y, z) VALUES ($1, $2, $3)",
        )
    )
    assert combined == (
        "WITH w0 AS (INSERT INTO a (x, y) VALUES ($1, $2)), "
        "w1 AS (INSERT INTO b (x) VALUES ($3)) "
        "INSERT INTO c (x, y, z) VALUES ($4, $5, $6)"
    )


def test_two_digit_parameters_are_renumbered_whole() -> None:
    first = "INSERT INTO a VALUES (" + ", ".join(f"${i}" for i in range(1, 13)) + ")"
    combined = combine((first, "INSERT INTO b VALUES ($1, $11)"))
    assert combined.endswith("INSERT INTO b VALUES ($13, $23)")


def test_rows_of_one_insert_become_one_multirow_insert_in_order() -> None:
    line = "INSERT INTO lines (id, n) VALUES ($1, $2)"
    head = "INSERT INTO heads (id) VALUES ($1)"
    statements = batch([(head, ("h",)), (line, ("a", 1)), (line, ("b", 2)), (line, ("c", 3))])
    assert statements == [
        (head, ["h"]),
        ("INSERT INTO lines (id, n) VALUES ($1, $2), ($3, $4), ($5, $6)", ["a", 1, "b", 2, "c", 3]),
    ]


def test_a_table_under_two_insert_texts_cannot_be_ordered_in_one_statement() -> None:
    assert (
        batch(
            [
                ("INSERT INTO t (a) VALUES ($1)", (1,)),
                ("INSERT INTO t (a, b) VALUES ($1, $2)", (1, 2)),
            ]
        )
        is None
    )


def test_a_suffix_is_kept_on_the_multirow_insert() -> None:
    sql = "INSERT INTO k (key) VALUES ($1) ON CONFLICT (key) DO NOTHING"
    assert multirow(sql, 2) == "INSERT INTO k (key) VALUES ($1), ($2) ON CONFLICT (key) DO NOTHING"


def test_many_rows_of_one_insert_go_out_as_one_array_per_column() -> None:
    sql = "INSERT INTO k (key, n) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
    rows = [(f"k{i}", i) for i in range(UNNEST_MIN_ROWS)]
    assert batch([(sql, row) for row in rows], {sql: ("text", "int8")}) == [
        (
            "INSERT INTO k (key, n) SELECT * FROM unnest($1::text[], $2::int8[])"
            " ON CONFLICT (key) DO NOTHING",
            [[k for k, _ in rows], [n for _, n in rows]],
        )
    ]
    # Fewer rows: a VALUES list, as before.
    assert batch([(sql, row) for row in rows[:3]], {sql: ("text", "int8")}) == [
        (multirow(sql, 3), [a for row in rows[:3] for a in row])
    ]


def test_only_plain_inserts_of_plain_types_become_arrays() -> None:
    assert unnested("INSERT INTO k (a, b) VALUES ($2, $1)", ("text", "text")) is None
    assert unnested("INSERT INTO k (a, b) VALUES ($1, 'x')", ("text",)) is None
    assert unnested("INSERT INTO k (a) VALUES ($1)", ('public."Odd"',)) is None
    assert unnested("UPDATE k SET a = $1", ("text",)) is None


def test_only_writes_that_read_no_other_table_wait_in_the_queue() -> None:
    assert deferrable("INSERT INTO t (a) VALUES ($1)")
    assert deferrable("UPDATE t SET a = $2, b = COALESCE($3, b) WHERE id = $1")
    # Parts of one chained statement share its snapshot: these could miss a queued row.
    assert not deferrable("UPDATE t SET a = (SELECT max(a) FROM u) WHERE id = $1")
    assert not deferrable("UPDATE t SET a = u.a FROM u WHERE t.id = u.id")
    assert not deferrable("INSERT INTO t (a) SELECT a FROM u")
    assert not deferrable("INSERT INTO t (a) VALUES ($1) RETURNING id")
    assert not deferrable("UPDATE t SET a = $2 WHERE id = $1 RETURNING a")
    assert not deferrable("DELETE FROM t WHERE id = $1")


def test_updates_of_different_tables_chain_beside_inserts() -> None:
    insert = "INSERT INTO ops (id) VALUES ($1)"
    update = "UPDATE transactions SET status = $2 WHERE id = $1"
    assert batch([(insert, ("o",)), (update, ("t", "ok"))]) == [
        (insert, ["o"]),
        (update, ["t", "ok"]),
    ]


def test_a_table_written_twice_runs_one_by_one() -> None:
    update = "UPDATE t SET a = $2 WHERE id = $1"
    # The second UPDATE would not see the first's row version inside one statement.
    assert batch([(update, ("x", 1)), (update, ("x", 2))]) is None
    # Nor would an UPDATE see a row INSERTed beside it.
    assert batch([("INSERT INTO t (id) VALUES ($1)", ("x",)), (update, ("x", 1))]) is None


def test_checks_become_one_select_holding_each_row() -> None:
    assert required(
        ("SELECT 1 FROM c WHERE id = $1", "SELECT 1 FROM d WHERE a = $1 AND b = $2")
    ) == (
        "SELECT settle_require(EXISTS (SELECT 1 FROM c WHERE id = $1 FOR SHARE), '0')"
        " AND settle_require(EXISTS (SELECT 1 FROM d WHERE a = $2 AND b = $3 FOR SHARE), '1')"
    )


class _Conn:
    """Records what a PostgresTx sends; starts no transaction."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[object, ...]]] = []

    async def execute(self, sql: str, *args: object) -> None:
        self.sent.append((sql, args))

    def transaction(self) -> None:
        raise AssertionError("a transaction was started")


async def test_a_required_row_and_the_writes_go_out_as_one_statement() -> None:
    conn = _Conn()
    tx = PostgresTx(conn)  # type: ignore[arg-type]
    await tx.require("SELECT 1 FROM customers WHERE id = $1", "cus_1", missing=LookupError())
    await tx.execute("INSERT INTO invoices (id, customer_id) VALUES ($1, $2)", "iv_1", "cus_1")
    await tx.commit()
    assert conn.sent == [
        (
            "WITH w0 AS (INSERT INTO invoices (id, customer_id) VALUES ($1, $2)) "
            "SELECT settle_require(EXISTS (SELECT 1 FROM customers WHERE id = $3 FOR SHARE),"
            " '0')",
            ("iv_1", "cus_1", "cus_1"),
        )
    ]


async def test_a_check_of_a_table_the_writes_touch_runs_in_a_transaction() -> None:
    conn = _Conn()
    tx = PostgresTx(conn)  # type: ignore[arg-type]
    await tx.require("SELECT 1 FROM customers WHERE id = $1", "cus_1", missing=LookupError())
    await tx.execute("UPDATE customers SET n = 1 WHERE id = $1", "cus_1")
    with pytest.raises(AssertionError, match="transaction was started"):
        await tx.commit()


async def test_a_guard_and_the_writes_go_out_as_one_statement_the_guard_read_first() -> None:
    """The guard is a CTE the main query reads (so it runs, and locks its row, before the
    writes, which run only after the main query), failing through settle_require."""
    conn = _Conn()
    tx = PostgresTx(conn)  # type: ignore[arg-type]
    await tx.execute("INSERT INTO events (id) VALUES ($1)", "ev_1")
    await tx.guard(
        "UPDATE invoices SET version = $2 WHERE id = $1 AND version = $3",
        "iv_1",
        3,
        2,
        conflict=LookupError(),
    )
    await tx.require("SELECT 1 FROM customers WHERE id = $1", "cus_1", missing=LookupError())
    await tx.commit()
    assert conn.sent == [
        (
            "WITH w0 AS (INSERT INTO events (id) VALUES ($1)), g0 AS (UPDATE invoices SET"
            " version = $3 WHERE id = $2 AND version = $4 RETURNING 1)"
            " SELECT settle_require(EXISTS (SELECT 1 FROM g0), 'g0')"
            " AND settle_require(EXISTS (SELECT 1 FROM customers WHERE id = $5 FOR SHARE), '0')",
            ("ev_1", "iv_1", 3, 2, "cus_1"),
        )
    ]

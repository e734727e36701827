from __future__ import annotations

from settle.db.postgres import combine


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

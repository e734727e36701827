"""Storage: one schema, executed through the drivers (sqlite3 behind one writer; asyncpg)."""

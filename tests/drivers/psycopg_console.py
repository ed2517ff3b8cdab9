"""psycopg 3 against the admin console: psycopg sends every query with the extended protocol
(Parse, Bind, Describe, Execute, Sync), which PgBouncer's console refuses. Connection parameters
come from the PG* environment variables, PGDATABASE being the console. Exit 77: no psycopg."""
import sys

try:
    import psycopg
except ImportError:
    sys.exit(77)

with psycopg.connect(autocommit=True) as conn:
    cur = conn.execute("SHOW POOLS")
    names = [column.name for column in cur.description]
    assert names[:4] == ["database", "user", "cl_active", "cl_waiting"], names
    rows = conn.execute("SHOW DATABASES").fetchall()
    by_name = {row[0]: row for row in rows}
    assert "app" in by_name and "pgbouncer" in by_name, by_name
    assert isinstance(by_name["app"][5], int), by_name["app"]  # pool_size is an int8 column

    cur = conn.execute("SHOW HOSTS")
    types = {column.name: column.type_code for column in cur.description}
    # text 25, int8 20, float8 701 (pg_type.dat)
    assert (types["role"], types["port"], types["lag_seconds"]) == (25, 20, 701), types
    hosts = {row[0]: row for row in cur.fetchall()}
    assert isinstance(hosts["app"][2], int), hosts

    version = conn.execute("SHOW VERSION").fetchone()[0]
    assert version.startswith("pgmarina "), version

    try:
        conn.execute("SHOW NOTHING")
        raise AssertionError("SHOW NOTHING succeeded")
    except psycopg.errors.SyntaxError:
        pass
    # The session goes on after an error, and commands work over the extended protocol too.
    conn.execute("PAUSE other")
    state = dict((row[0], row[15]) for row in conn.execute("SHOW DATABASES").fetchall())
    assert state["other"] == 1, state
    conn.execute("RESUME other")
    state = dict((row[0], row[15]) for row in conn.execute("SHOW DATABASES").fetchall())
    assert state["other"] == 0, state
print("ok")

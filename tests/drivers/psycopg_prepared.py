"""psycopg 3 through pgmarina with prepare_threshold=0: every query is a named prepared
statement (_pg3_<n>), prepared on one server and executed on whichever the next transaction
gets. Connection parameters come from the PG* environment variables. Exit 77: no psycopg."""
import sys
import threading

try:
    import psycopg
except ImportError:
    sys.exit(77)

CLIENTS, ROUNDS = 10, 20
errors = []


def client(n):
    try:
        with psycopg.connect(prepare_threshold=0, autocommit=True) as conn:
            for i in range(ROUNDS):
                assert conn.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
                assert conn.execute("SELECT %s::int * %s::int", (i, n)).fetchone()[0] == i * n
            # A transaction block of prepared statements, then one that fails and rolls back.
            with conn.transaction():
                for i in range(5):
                    assert conn.execute("SELECT %s::text", (str(i),)).fetchone()[0] == str(i)
            try:
                conn.execute("SELECT 1 / %s::int", (0,))
            except psycopg.errors.DivisionByZero:
                pass
            assert conn.execute("SELECT %s::int + 1", (41,)).fetchone()[0] == 42
    except Exception as e:  # reported below, in the main thread
        errors.append(f"client {n}: {e!r}")


threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors:
    print(e)
sys.exit(1 if errors else 0)

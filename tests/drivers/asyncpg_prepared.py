"""asyncpg through pgmarina with its default settings: its statement cache prepares
__asyncpg_stmt_<n>__ statements and reuses them across transactions, from 50 coroutines with a
connection each. Connection parameters come from the PG* environment variables. Exit 77: no
asyncpg."""
import asyncio
import sys

try:
    import asyncpg
except ImportError:
    sys.exit(77)

COROUTINES, ROUNDS = 50, 10


async def client(n):
    conn = await asyncpg.connect()
    try:
        for i in range(ROUNDS):
            assert await conn.fetchval("SELECT $1::int + 1", i) == i + 1
            row = await conn.fetchrow("SELECT $1::int AS n, $2::text AS t", n, str(i))
            assert (row["n"], row["t"]) == (n, str(i))
        statement = await conn.prepare("SELECT $1::int * 2")
        for i in range(ROUNDS):
            assert await statement.fetchval(i) == i * 2
        async with conn.transaction():
            assert await conn.fetchval("SELECT $1::int - 1", n) == n - 1
    finally:
        await conn.close()


async def main():
    results = await asyncio.gather(*(client(n) for n in range(COROUTINES)),
                                   return_exceptions=True)
    errors = [f"coroutine {n}: {r!r}" for n, r in enumerate(results) if r is not None]
    for e in errors:
        print(e)
    return 1 if errors else 0


sys.exit(asyncio.run(main()))

// routing::classify on reads: plain SELECTs, constructs that look like calls, WITH lists,
// locking clauses, SELECT INTO, allowlisted, other and forbidden functions, role probes; and the
// options that widen what a read may call or assume. Statements other than queries, and texts
// (comments, quoting, limits), are in classify_statements_test.cpp and classify_text_test.cpp.

#include "routing/classify.hpp"

#include "tests/support/classify_cases.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using namespace routing::test;

} // namespace

TEST_SUITE("routing.classify") {
    TEST_CASE("plain reads are replica_ok") {
        const Case cases[] = {
            {"SELECT 1", replica, read_only_select},
            {"select 1", replica, read_only_select},
            {"SELECT 1;", replica, read_only_select},
            {";;SELECT 1;;", replica, read_only_select},
            {"SELECT 1; -- done", replica, read_only_select},
            {"SELECT $1", replica, read_only_select},
            {"SELECT * FROM users WHERE id = $1", replica, read_only_select},
            {R"(SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2)", replica,
             read_only_select},
            {"SELECT a, b FROM t ORDER BY a DESC NULLS LAST LIMIT 10 OFFSET 20", replica,
             read_only_select},
            {"SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b", replica, read_only_select},
            {"SELECT * FROM a JOIN b USING (id)", replica, read_only_select},
            {"SELECT * FROM a LEFT JOIN (b JOIN c ON b.id = c.id) ON a.id = b.id", replica,
             read_only_select},
            {"SELECT * FROM t1 CROSS JOIN LATERAL (SELECT * FROM t2 WHERE t2.a = t1.a) s", replica,
             read_only_select},
            {"SELECT * FROM ONLY t", replica, read_only_select},
            {"SELECT * FROM t WHERE id IN (1, 2, 3)", replica, read_only_select},
            {"SELECT * FROM t WHERE id NOT IN (SELECT id FROM u)", replica, read_only_select},
            {"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)", replica,
             read_only_select},
            {"SELECT exists(SELECT 1)", replica, read_only_select},
            {"SELECT * FROM t WHERE id = ANY($1::int[])", replica, read_only_select},
            {"SELECT * FROM t WHERE id = ALL (ARRAY[1, 2])", replica, read_only_select},
            {"SELECT * FROM t WHERE id = SOME (SELECT 1)", replica, read_only_select},
            {"SELECT 1 WHERE 1 = ANY ('{1}')", replica, read_only_select},
            {"SELECT * FROM t WHERE (a, b) OVERLAPS (c, d)", replica, read_only_select},
            {"SELECT * FROM t WHERE name LIKE ('%' || $1) OR name ILIKE ('x')", replica,
             read_only_select},
            {"SELECT x FROM t WHERE a BETWEEN SYMMETRIC (1) AND (2)", replica, read_only_select},
            {"SELECT * FROM t WHERE x IS DISTINCT FROM (1)", replica, read_only_select},
            {"SELECT CASE WHEN (a > 0) THEN (1) ELSE (2) END FROM t", replica, read_only_select},
            {"SELECT * FROM t ORDER BY (a + b)", replica, read_only_select},
            {"SELECT x FROM t WHERE x = (((1)))", replica, read_only_select},
            {"SELECT (SELECT max(id) FROM t) + 1", replica, read_only_select},
            {"SELECT 1 UNION SELECT 2 EXCEPT SELECT 3 INTERSECT SELECT 4", replica,
             read_only_select},
            {"(SELECT 1) UNION ALL (SELECT 2)", replica, read_only_select},
            {"((SELECT 1))", replica, read_only_select},
            {"VALUES (1), (2)", replica, read_only_select},
            {"TABLE t", replica, read_only_select},
            {"TABLE s.t ORDER BY 1 LIMIT 5", replica, read_only_select},
            {"SELECT 1 FOR READ ONLY", replica, read_only_select},
            {"SELECT a FROM t ORDER BY a FETCH FIRST 5 ROWS WITH TIES", replica, read_only_select},
            {"SELECT x AT TIME ZONE 'UTC' FROM t", replica, read_only_select},
            {"SELECT t.update, t.delete, t.insert, t.merge, t.into FROM t", replica,
             read_only_select},
            {"SELECT a.b.c FROM t a", replica, read_only_select},
            {"SELECT 'a' || 'b'", replica, read_only_select},
            {"SELECT * FROM t WHERE created_at > now() - interval '1 day'", replica,
             read_only_select},
            {"SELECT CURRENT_TIMESTAMP(3), LOCALTIMESTAMP, CURRENT_DATE, current_user, "
             "session_user",
             replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("constructs that take a parenthesis are not calls") {
        const Case cases[] = {
            {"SELECT CAST(x AS numeric(10, 2)) FROM t", replica, read_only_select},
            {"SELECT CAST(x AS bpchar(3)) FROM t", replica, read_only_select},
            {"SELECT CAST(x AS character varying(3)) FROM t", replica, read_only_select},
            {"SELECT x::numeric(10, 2), y::varchar(5), z::timestamp(3) with time zone FROM t",
             replica, read_only_select},
            {"SELECT x::character varying(20), y::bit varying(8), z::char(2) FROM t", replica,
             read_only_select},
            {"SELECT x::pg_catalog.bpchar(3), y::\"MyType\"(1) FROM t", replica, read_only_select},
            {"SELECT x::time(3), y::interval(2), z::float(24), w::decimal(5) FROM t", replica,
             read_only_select},
            {"SELECT ROW(1, 2), ARRAY[1, 2], ARRAY(SELECT 1)", replica, read_only_select},
            {"SELECT COALESCE(a, b), NULLIF(a, 0), GREATEST(a, b), LEAST(a, b) FROM t", replica,
             read_only_select},
            {"SELECT EXTRACT(EPOCH FROM now())", replica, read_only_select},
            {"SELECT POSITION('a' IN s), SUBSTRING(s FROM 2 FOR 3), TRIM(BOTH ' ' FROM s) "
             "FROM t",
             replica, read_only_select},
            {"SELECT OVERLAY(s PLACING 'x' FROM 1 FOR 1), substring(s FOR 2) FROM t", replica,
             read_only_select},
            {"SELECT NORMALIZE(s), TREAT(x AS int), GROUPING(a) FROM t GROUP BY a", replica,
             read_only_select},
            {"SELECT xmlelement(name foo, xmlattributes(1 AS a), 'bar')", replica,
             read_only_select},
            {"SELECT * FROM xmltable('/r' PASSING x COLUMNS id FOR ORDINALITY, n text PATH 'n')",
             replica, read_only_select},
            {"SELECT json_object('a': 1), json_array(1, 2)", replica, read_only_select},
            {"SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t", replica,
             read_only_select},
            {"SELECT sum(x) OVER w FROM t WINDOW w AS (ORDER BY y ROWS BETWEEN 1 PRECEDING AND "
             "CURRENT ROW)",
             replica, read_only_select},
            {"SELECT count(*) FILTER (WHERE a > 0) FROM t", replica, read_only_select},
            {"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM t", replica,
             read_only_select},
            {"SELECT string_agg(name, ',' ORDER BY (name)) FROM t", replica, read_only_select},
            {"SELECT * FROM generate_series(1, 10) g(i)", replica, read_only_select},
            {"SELECT * FROM generate_series(1, 10) AS g(i)", replica, read_only_select},
            {"SELECT * FROM (VALUES (1, 'a'), (2, 'b')) v(id, name)", replica, read_only_select},
            {"SELECT * FROM unnest($1::int[]) WITH ORDINALITY u(x, n)", replica, read_only_select},
            {"SELECT * FROM t1, LATERAL generate_series(1, t1.n) AS g(x)", replica,
             read_only_select},
            {"SELECT * FROM ROWS FROM (generate_series(1, 2), unnest(ARRAY[1])) AS r(a, b)",
             replica, read_only_select},
            {"SELECT * FROM json_to_record('{\"a\": 1}') AS (a int)", replica, read_only_select},
            {"SELECT a FROM t GROUP BY ROLLUP (a, b)", replica, read_only_select},
            {"SELECT a FROM t GROUP BY CUBE (a, b)", replica, read_only_select},
            {"SELECT a FROM t GROUP BY GROUPING SETS ((a), (b), ())", replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("where the grammar is ambiguous without a catalog, a name followed by ( is a call") {
        // Each of these is a valid read; the classifier sends it to the primary rather than
        // guess, and the tests pin that down so that a change is a decision.
        const Case cases[] = {
            {"SELECT * FROM t x(a, b)", primary, function_not_allowed},
            {"SELECT 1 FROM t GROUP BY a, ROLLUP (b)", primary, function_not_allowed},
            {"SELECT * FROM t TABLESAMPLE SYSTEM (10)", primary, function_not_allowed},
            {"SELECT '1'::interval second(3)", primary, function_not_allowed},
            {"SELECT c.relname OPERATOR(pg_catalog.~) 'x' FROM pg_class c", primary,
             function_not_allowed},
            {"SELECT filter(x) FROM t", primary, function_not_allowed},
            {"SELECT rollup(x) FROM t", primary, function_not_allowed},
            {"SELECT bpchar(3) 'abc'", primary, function_not_allowed},
        };
        check(cases);
    }

    TEST_CASE("WITH lists") {
        const Case cases[] = {
            {"WITH a AS (SELECT 1) SELECT * FROM a", replica, read_only_select},
            {"WITH a(x) AS (SELECT 1) SELECT x FROM a", replica, read_only_select},
            {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) "
             "SELECT * FROM r",
             replica, read_only_select},
            {"WITH a(x) AS (SELECT 1), b(y) AS (SELECT 2), c(z) AS (VALUES (3)) SELECT * FROM a, "
             "b, c",
             replica, read_only_select},
            {"WITH a AS MATERIALIZED (SELECT 1), b(x) AS NOT MATERIALIZED (SELECT 2) SELECT * "
             "FROM a, b",
             replica, read_only_select},
            {"WITH \"A\"(x) AS (SELECT 1) SELECT * FROM \"A\"", replica, read_only_select},
            {"SELECT * FROM (WITH a(x) AS (SELECT 1) SELECT x FROM a) s", replica,
             read_only_select},
            {"SELECT * FROM t WHERE EXISTS (WITH a(x) AS (SELECT 1) SELECT x FROM a)", replica,
             read_only_select},
            {"WITH a AS (SELECT 1) (SELECT * FROM a)", replica, read_only_select},
            {"WITH a AS (WITH b(x) AS (SELECT 1) SELECT x FROM b), c(y) AS (SELECT 2) SELECT * "
             "FROM a, c",
             replica, read_only_select},
            {"WITH a AS (SELECT 1) SELECT lower(x), upper(y) FROM a", replica, read_only_select},
            // After the list, "f(x), g(y)" are calls again, not the next CTE.
            {"WITH a AS (SELECT 1) SELECT lower(x), nextval('s') FROM a", primary,
             function_forbidden},
            {"WITH a(x) AS (SELECT 1), b AS (SELECT 2) SELECT lower(x), nextval('s') FROM a",
             primary, function_forbidden},
            {"WITH a AS (SELECT 1) (SELECT lower(x), nextval('s') FROM a)", primary,
             function_forbidden},
            {"WITH a AS (SELECT nextval('s')) SELECT * FROM a", primary, function_forbidden},
            {"WITH a(x) AS (SELECT my_func()) SELECT * FROM a", primary, function_not_allowed},
            // A WITH that does not open a query opens no list.
            {"SELECT * FROM unnest(a) WITH ORDINALITY AS u(x, n), nextval('s')", primary,
             function_forbidden},
            {"WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE", primary, locking_clause},
            {"WITH a AS (SELECT 1) SELECT * INTO t2 FROM a", primary, select_into},
            // SEARCH and CYCLE end the list as far as the classifier can tell: primary.
            {"WITH RECURSIVE r(n) AS (SELECT 1) CYCLE n SET c USING p, s(x) AS (SELECT 1) SELECT "
             "1",
             primary, function_not_allowed},
        };
        check(cases);
    }

    TEST_CASE("a data-modifying WITH, or a write after the list, goes to the primary") {
        const Case cases[] = {
            {"WITH a AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM a", primary,
             modifying_cte},
            {"WITH a AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a", primary, modifying_cte},
            {"WITH a AS (DELETE FROM t RETURNING *) SELECT count(*) FROM a", primary,
             modifying_cte},
            {"WITH a AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING "
             "*) SELECT 1",
             primary, modifying_cte},
            {"with recursive x as (select 1), y as (insert into t values (1) returning 1) select "
             "1",
             primary, modifying_cte},
            {"WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING 1) SELECT 1) SELECT "
             "1",
             primary, modifying_cte},
            {"WITH a AS (InSeRt INTO t VALUES (1)) SELECT 1", primary, modifying_cte},
            {"WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", primary, write_statement},
            {"WITH a AS (SELECT 1) UPDATE t SET x = (SELECT * FROM a)", primary, write_statement},
            {"WITH a AS (SELECT 1) DELETE FROM t", primary, write_statement},
            {"WITH a AS (SELECT 1) MERGE INTO t USING a ON true WHEN MATCHED THEN DELETE", primary,
             write_statement},
            // A bare column named like a DML keyword is indistinguishable: primary.
            {"SELECT update FROM t", primary, write_statement},
            {"SELECT x FROM (SELECT delete FROM t) s", primary, modifying_cte},
        };
        check(cases);
    }

    TEST_CASE("locking clauses go to the primary, at any depth") {
        const Case cases[] = {
            {"SELECT * FROM t FOR UPDATE", primary, locking_clause},
            {"SELECT * FROM t FOR NO KEY UPDATE", primary, locking_clause},
            {"SELECT * FROM t FOR SHARE", primary, locking_clause},
            {"SELECT * FROM t FOR KEY SHARE", primary, locking_clause},
            {"SELECT * FROM t FOR UPDATE OF t NOWAIT", primary, locking_clause},
            {"SELECT * FROM t FOR UPDATE SKIP LOCKED", primary, locking_clause},
            {"SELECT * FROM t FOR SHARE OF t FOR UPDATE OF u", primary, locking_clause},
            {"select * from t for no key update", primary, locking_clause},
            {"SeLeCt * FrOm t FoR uPdAtE", primary, locking_clause},
            {"SELECT * FROM t\nFOR\n/* why */ UPDATE", primary, locking_clause},
            {"SELECT * FROM t FOR -- why\nSHARE", primary, locking_clause},
            {"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", primary, locking_clause},
            {"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)", primary, locking_clause},
            {"(SELECT * FROM t FOR UPDATE)", primary, locking_clause},
            {"TABLE t FOR UPDATE", primary, locking_clause},
            {"SELECT * FROM t LIMIT 1 FOR UPDATE", primary, locking_clause},
            {"SELECT \"for update\" FROM t", replica, read_only_select},
            {"SELECT 'for update' FROM t", replica, read_only_select},
            {"SELECT \"for\", \"update\" FROM t", replica, read_only_select},
            {"SELECT * FROM t -- FOR UPDATE", replica, read_only_select},
            {"SELECT * FROM t /* FOR UPDATE */", replica, read_only_select},
            {"SELECT * FROM t WHERE s = $$ FOR UPDATE $$", replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("SELECT INTO creates a table") {
        const Case cases[] = {
            {"SELECT * INTO new_t FROM t", primary, select_into},
            {"SELECT 1 INTO TEMP x", primary, select_into},
            {"SELECT * INTO UNLOGGED t2 FROM t", primary, select_into},
            {"select a into b from c", primary, select_into},
            {"SELECT a INTO STRICT b FROM c", primary, select_into},
            {"SELECT 'into' FROM t", replica, read_only_select},
            {"SELECT \"into\" FROM t", replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("calls to allowlisted functions are replica_ok") {
        const Case cases[] = {
            {"SELECT count(*) FROM t", replica, read_only_select},
            {"SELECT lower(name), upper(name), length(name) FROM users", replica, read_only_select},
            {"SELECT date_trunc('day', created_at), count(*) FROM t GROUP BY 1", replica,
             read_only_select},
            {"SELECT to_char(now(), 'YYYY-MM-DD')", replica, read_only_select},
            {"SELECT md5(x), encode(decode(y, 'hex'), 'base64') FROM t", replica, read_only_select},
            {"SELECT json_build_object('a', 1), jsonb_agg(x) FROM t", replica, read_only_select},
            {"SELECT jsonb_set(data, '{a}', '1'), jsonb_insert(data, '{b}', '2') FROM t", replica,
             read_only_select},
            {"SELECT left('abc', 2), right('abc', 1)", replica, read_only_select},
            {"SELECT current_schema(), current_database(), version()", replica, read_only_select},
            {"SELECT current_setting('search_path')", replica, read_only_select},
            {"SELECT pg_last_wal_replay_lsn(), pg_backend_pid()", replica, read_only_select},
            {"SELECT pg_sleep(1)", replica, read_only_select},
            {"SELECT gen_random_uuid(), random()", replica, read_only_select},
            {"SELECT pg_catalog.now()", replica, read_only_select},
            {"SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute "
             "a",
             replica, read_only_select},
            {"SELECT PG_CATALOG.LOWER('A')", replica, read_only_select},
            {"SELECT \"lower\"(name) FROM t", replica, read_only_select},
            {"SELECT pg_catalog.\"lower\"('A')", replica, read_only_select},
            {"SELECT \"pg_catalog\".lower('A')", replica, read_only_select},
            {"SELECT lower (name) FROM t", replica, read_only_select},
            {"SELECT lower/* c */(name) FROM t", replica, read_only_select},
            {"SELECT lower\n-- c\n(name) FROM t", replica, read_only_select},
            {"SELECT app.pg_catalog.now()", replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("calls to other functions go to the primary") {
        const Case cases[] = {
            {"SELECT my_func(1)", primary, function_not_allowed},
            {"SELECT * FROM my_func(1)", primary, function_not_allowed},
            {"SELECT a, my_func(a) FROM t", primary, function_not_allowed},
            {"SELECT * FROM t WHERE my_func(a)", primary, function_not_allowed},
            {"SELECT (SELECT my_func(1))", primary, function_not_allowed},
            {"SELECT public.lower(name) FROM t", primary, function_not_allowed},
            {"SELECT app.get_user(1)", primary, function_not_allowed},
            {"SELECT a.b.c(1)", primary, function_not_allowed},
            {"SELECT \"Lower\"('A')", primary, function_not_allowed},
            {"SELECT U&\"lower\"('A')", primary, function_not_allowed},
            {"SELECT lo_import('/etc/passwd')", primary, function_not_allowed},
            {"SELECT dblink_exec('dbname=x', 'DELETE FROM t')", primary, function_not_allowed},
            {"SELECT pg_stat_reset()", primary, function_not_allowed},
            {"SELECT ÄÖÜ(1)", primary, function_not_allowed},
            {"SELECT coalesce.x(1)", primary, function_not_allowed},
            {"SELECT \"coalesce\"(1)", primary, function_not_allowed},
        };
        check(cases);
    }

    TEST_CASE("functions that never run on a replica") {
        const Case cases[] = {
            {"SELECT nextval('s')", primary, function_forbidden},
            {"SELECT NEXTVAL('s')", primary, function_forbidden},
            {"sElEcT NeXtVaL('s')", primary, function_forbidden},
            {"SELECT nextval ('s')", primary, function_forbidden},
            {"SELECT \"nextval\"('s')", primary, function_forbidden},
            {"SELECT pg_catalog.nextval('s')", primary, function_forbidden},
            {"SELECT public.nextval('s')", primary, function_forbidden},
            {"SELECT nextval -- c\n('s')", primary, function_forbidden},
            {"SELECT lower(x) FROM t WHERE y = nextval/**/('s')", primary, function_forbidden},
            {"SELECT id, nextval('s') FROM t", primary, function_forbidden},
            {"SELECT * FROM t WHERE id = nextval('s')", primary, function_forbidden},
            {"SELECT * FROM nextval('s')", primary, function_forbidden},
            {"SELECT (SELECT nextval('s'))", primary, function_forbidden},
            {"VALUES (nextval('s'))", primary, function_forbidden},
            {"SELECT count(*) FILTER (WHERE nextval('s') > 0) FROM t", primary, function_forbidden},
            {"SELECT row_number() OVER (ORDER BY nextval('s')) FROM t", primary,
             function_forbidden},
            {"SELECT * FROM generate_series(1, 3) g(i) WHERE nextval('s') > 0", primary,
             function_forbidden},
            {"SELECT setval('s', 1)", primary, function_forbidden},
            {"SELECT currval('s')", primary, function_forbidden},
            {"SELECT lastval()", primary, function_forbidden},
            {"SELECT pg_advisory_lock(1)", primary, function_forbidden},
            {"SELECT pg_advisory_lock_shared(1)", primary, function_forbidden},
            {"SELECT pg_advisory_xact_lock(1)", primary, function_forbidden},
            {"SELECT pg_advisory_unlock(1)", primary, function_forbidden},
            {"SELECT pg_advisory_unlock_all()", primary, function_forbidden},
            {"SELECT pg_try_advisory_lock(1)", primary, function_forbidden},
            {"SELECT pg_try_advisory_xact_lock_shared(1, 2)", primary, function_forbidden},
            {"SELECT pg_catalog.set_config('search_path', '', false)", primary, function_forbidden},
            {"SELECT pg_notify('c', 'x')", primary, function_forbidden},
            {"SELECT txid_current()", primary, function_forbidden},
            {"SELECT txid_current_if_assigned()", primary, function_forbidden},
            {"SELECT pg_current_xact_id()", primary, function_forbidden},
            {"SELECT pg_current_wal_lsn()", primary, function_forbidden},
            {"SELECT pg_current_wal_insert_lsn()", primary, function_forbidden},
            {"SELECT pg_export_snapshot()", primary, function_forbidden},
            {"SELECT pg_terminate_backend(123)", primary, function_forbidden},
            {"SELECT pg_cancel_backend(123)", primary, function_forbidden},
            {"SELECT nextval FROM t", replica, read_only_select},
            {"SELECT t.nextval FROM t", replica, read_only_select},
            {"SELECT 'nextval(''s'')'", replica, read_only_select},
            {"SELECT \"NEXTVAL\"('s')", primary, function_not_allowed},
        };
        check(cases);
    }

    TEST_CASE("pg_is_in_recovery() answers for the server that runs it") {
        const Case cases[] = {
            {"SELECT pg_is_in_recovery()", replica, read_only_select},
            {"SELECT pg_catalog.pg_is_in_recovery()", replica, read_only_select},
            {"SELECT public.pg_is_in_recovery()", primary, function_not_allowed},
        };
        check(cases);
    }

    TEST_CASE("libpq's role probes go to the primary") {
        const Case cases[] = {
            {"SHOW transaction_read_only", primary, role_probe},
            {"show TRANSACTION_READ_ONLY", primary, role_probe},
            {"SHOW \"transaction_read_only\"", primary, role_probe},
            {"SHOW \"Transaction_Read_Only\"", primary, role_probe},
            {"SHOW in_hot_standby", primary, role_probe},
        };
        check(cases);
    }

    TEST_CASE("PgCat's known misroutes go to the primary (reference.md pain point 6)") {
        SUBCASE("sequences in a SELECT") {
            CHECK(classify("SELECT nextval('orders_id_seq')").target == primary);
            CHECK(classify("SELECT setval('orders_id_seq', 42)").target == primary);
        }
        SUBCASE("writable CTEs") {
            CHECK(classify("WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) "
                           "SELECT * FROM moved")
                      .target == primary);
        }
        SUBCASE("FOR NO KEY UPDATE and FOR KEY SHARE") {
            CHECK(classify("SELECT * FROM jobs WHERE id = 1 FOR NO KEY UPDATE").target == primary);
            CHECK(classify("SELECT * FROM jobs WHERE id = 1 FOR KEY SHARE").target == primary);
        }
        SUBCASE("text the parser cannot read is not sent to a replica") {
            CHECK(classify("SELECT * FROM t WHERE a = 'x").target == primary);
            CHECK(classify("SELEKT * FROM t").target == primary);
            CHECK(classify("SELECT * FROM t WHERE (a = 1").target == primary);
        }
    }
}

TEST_SUITE("routing.classify options") {
    TEST_CASE("read_only_functions adds to the allowlist, never to the forbidden list") {
        const std::vector<std::string> configured{"my_func",   "app.get_user", "nextval",
                                                  "MixedCase", ".odd",         "pg_is_in_recovery"};
        const ClassifyOptions options{.read_only_functions = configured};
        const Case cases[] = {
            {"SELECT my_func(1)", replica, read_only_select},
            {"SELECT MY_FUNC(1)", replica, read_only_select},
            {"SELECT pg_catalog.my_func(1)", replica, read_only_select},
            {"SELECT other.my_func(1)", primary, function_not_allowed},
            {"SELECT app.get_user(1)", replica, read_only_select},
            {"SELECT APP.GET_USER(1)", replica, read_only_select},
            {"SELECT \"app\".\"get_user\"(1)", replica, read_only_select},
            {"SELECT get_user(1)", primary, function_not_allowed},
            {"SELECT other.get_user(1)", primary, function_not_allowed},
            {"SELECT \"MixedCase\"()", replica, read_only_select},
            {"SELECT MixedCase()", primary, function_not_allowed},
            {"SELECT odd()", primary, function_not_allowed},
            {"SELECT lower(x), my_func(x) FROM t", replica, read_only_select},
            {"SELECT nextval('s')", primary, function_forbidden},
            {"COPY (SELECT my_func(1)) TO STDOUT", replica, copy_to_stdout},
        };
        check(cases, options);
    }

    TEST_CASE("default_transaction_read_only on: transactions are read-only unless they say") {
        const ClassifyOptions options{.default_transaction_read_only = true};
        const Case cases[] = {
            {"BEGIN", replica, default_read_only},
            {"START TRANSACTION ISOLATION LEVEL REPEATABLE READ", replica, default_read_only},
            {"BEGIN DEFERRABLE", replica, default_read_only},
            {"BEGIN READ ONLY", replica, explicit_read_only},
            {"BEGIN READ WRITE", primary, transaction_begin},
            {"BEGIN ISOLATION LEVEL SERIALIZABLE", primary, serializable},
            {"SELECT my_func(1)", replica, default_read_only},
            {"SELECT lower(x) FROM t", replica, read_only_select},
            {"SELECT my_func(1), lower(x) FROM t", replica, default_read_only},
            {"COPY (SELECT my_func()) TO STDOUT", replica, default_read_only},
            {"SELECT U&\"f\"(1)", primary, function_not_allowed},
            {"SELECT my_func(1), nextval('s')", primary, function_forbidden},
            {"SELECT my_func(1) FROM t FOR UPDATE", primary, locking_clause},
            {"SELECT my_func(1) INTO t2", primary, select_into},
            {"SELECT pg_is_in_recovery()", replica, read_only_select},
            {"INSERT INTO t VALUES (1)", primary, write_statement},
            {"CREATE TEMP TABLE t (a int)", primary, utility_statement},
            {"SET TRANSACTION READ WRITE", primary, session_statement},
            {"SHOW search_path", replica, show},
        };
        check(cases, options);
    }

    TEST_CASE("standard_conforming_strings off: a backslash escapes the quote") {
        const ClassifyOptions options{.standard_conforming_strings = false};
        const Case cases[] = {
            {R"(SELECT 'a\'; DELETE FROM t --')", replica, read_only_select},
            {R"(SELECT 'a\\'; DELETE FROM t)", primary, multi_statement},
            {R"(SELECT 'a\')", primary, unparsable},
            {R"(SELECT 'a''b')", replica, read_only_select},
        };
        check(cases, options);
    }
}

#include "routing/classify.hpp"

#include <doctest/doctest.h>

#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using routing::Classification;
using routing::classify;
using routing::ClassifyOptions;
using routing::DefaultReadOnly;
using routing::Reason;
using routing::Target;
using enum Reason;
using namespace std::string_view_literals;

constexpr Target replica = Target::replica_ok;
constexpr Target primary = Target::primary;

struct Case {
    std::string_view sql;
    Target target;
    Reason reason;
    DefaultReadOnly change = DefaultReadOnly::unchanged;
};

std::string name_of(DefaultReadOnly change) {
    switch (change) {
    case DefaultReadOnly::unchanged:
        return "unchanged";
    case DefaultReadOnly::on:
        return "on";
    case DefaultReadOnly::off:
        return "off";
    case DefaultReadOnly::reset:
        return "reset";
    }
    return "?";
}

// Each case, and two properties of every text the classifier could read: a statement appended
// after one makes a multi-statement string (texts without a statement, empty ones and bare
// hints, are left out), and a quote or comment left open after it makes it unparsable. Both go
// to the primary whatever the text was.
void check(std::span<const Case> cases, const ClassifyOptions& options = {}) {
    for (const Case& c : cases) {
        CAPTURE(c.sql);
        const Classification got = classify(c.sql, options);
        CHECK(to_string(got.target) == to_string(c.target));
        CHECK(to_string(got.reason) == to_string(c.reason));
        CHECK(name_of(got.default_read_only) == name_of(c.change));

        if (c.reason == unparsable || c.reason == multi_statement) {
            continue;
        }
        const std::string text(c.sql);
        if (c.reason != empty && c.reason != hint) {
            CHECK(classify(text + "\n;SELECT 1", options) ==
                  Classification{primary, multi_statement});
        }
        for (const std::string_view opener : {"'"sv, "\""sv, "$$"sv, "/*"sv, "E'"sv}) {
            CHECK(classify(text + "\n" + std::string(opener), options) ==
                  Classification{primary, unparsable});
        }
    }
}

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

    TEST_CASE("role probes go to the primary") {
        const Case cases[] = {
            {"SELECT pg_is_in_recovery()", primary, role_probe},
            {"SELECT pg_catalog.pg_is_in_recovery()", primary, role_probe},
            {"SHOW transaction_read_only", primary, role_probe},
            {"show TRANSACTION_READ_ONLY", primary, role_probe},
            {"SHOW \"transaction_read_only\"", primary, role_probe},
            {"SHOW \"Transaction_Read_Only\"", primary, role_probe},
            {"SHOW in_hot_standby", primary, role_probe},
        };
        check(cases);
    }

    TEST_CASE("comments and hints") {
        const Case cases[] = {
            {"/* pgmarina:replica */ SELECT my_func()", replica, hint},
            {"SELECT my_func() /* pgmarina:replica */", replica, hint},
            {"/* PGMARINA:REPLICA */ SELECT my_func()", replica, hint},
            {"/*pgmarina:replica*/ INSERT INTO t VALUES (1)", replica, hint},
            {"/* pgmarina:replica */ SELECT nextval('s')", replica, hint},
            {"/* pgmarina:replica */ BEGIN", replica, hint},
            {"/* pgmarina:replica */", replica, hint},
            {"/* pgmarina:primary */ SELECT 1", primary, hint},
            {"SELECT 1 /* pgmarina:primary */", primary, hint},
            {"/* pgmarina:primary */ BEGIN READ ONLY", primary, hint},
            {"/* pgmarina:primary */", primary, hint},
            {"/* pgmarina:replica */ /* pgmarina:primary */ SELECT 1", primary, hint},
            {"-- pgmarina:replica\nSELECT my_func()", primary, function_not_allowed},
            {"/* pgmarina:replica please */ SELECT my_func()", primary, function_not_allowed},
            {"/* pgmarina:replica /* nested */ */ SELECT my_func()", primary, function_not_allowed},
            {"SELECT '/* pgmarina:replica */', my_func()", primary, function_not_allowed},
            {"/* pgmarina:replica */ SELECT 1; SELECT 2", primary, multi_statement},
            {"/* pgmarina:replica */ SELECT 'unterminated", primary, unparsable},
            {"/* pgmarina:replica */ SELECT (1", primary, unparsable},
            {"/* pgmarina:replica */ SELECT 1)", primary, unparsable},
            {"/* pgmarina:replica */ SELECT ARRAY[1", primary, unparsable},
            // Past lexing, parentheses and the statement count, a hint decides alone, whatever
            // the options: the server will refuse this one wherever it goes.
            {"/* pgmarina:replica */ BEGIN READ", replica, hint},
            {"/* pgmarina:replica */ (SELECT my_func() FROM t) garbage", replica, hint},
            {"SELECT /* a /* nested */ comment */ 1", replica, read_only_select},
            {"SELECT 1 -- trailing comment", replica, read_only_select},
            {"SELECT 1 /* ; DELETE FROM t */", replica, read_only_select},
            {"SELECT 'a' -- ; DELETE FROM t\n", replica, read_only_select},
        };
        check(cases);
    }

    TEST_CASE("empty texts are replica_ok") {
        const Case cases[] = {
            {"", replica, empty},
            {"   \n\t", replica, empty},
            {";", replica, empty},
            {";; ; ", replica, empty},
            {"-- ping", replica, empty},
            {"/* only a comment */", replica, empty},
            {"/* a */ ; -- b", replica, empty},
        };
        check(cases);
    }

    TEST_CASE("strings, dollar quotes and quoted identifiers hide keywords") {
        const Case cases[] = {
            {"SELECT 'insert into t values (1)'", replica, read_only_select},
            {"SELECT 'a;b'", replica, read_only_select},
            {"SELECT $$;$$", replica, read_only_select},
            {"SELECT $$ DELETE FROM t; $$", replica, read_only_select},
            {"SELECT $tag$ DELETE FROM t; $$ $tag$", replica, read_only_select},
            {"SELECT $a$ $b$ ; $b$ $a$", replica, read_only_select},
            {R"(SELECT E'\';DELETE FROM t')", replica, read_only_select},
            {R"(SELECT e'it\'s')", replica, read_only_select},
            {"SELECT 'it''s; DROP TABLE t'", replica, read_only_select},
            {"SELECT \"a;b\" FROM t", replica, read_only_select},
            {"SELECT \"select\"\"from\" FROM t", replica, read_only_select},
            {"SELECT * FROM \"Users\" WHERE \"for\" = 1 AND \"into\" = 2", replica,
             read_only_select},
            {R"(SELECT U&'\0041', B'101', X'1F', N'abc')", replica, read_only_select},
            {"SELECT x FROM t WHERE s = '$$' AND u = '\"'", replica, read_only_select},
            {"SELECT $1 || '$2'", replica, read_only_select},
            // standard_conforming_strings on: 'a\' is a whole string, and what follows is code.
            {R"(SELECT 'a\'; DELETE FROM t --')", primary, multi_statement},
        };
        check(cases);
    }

    TEST_CASE("more than one statement goes to the primary") {
        const Case cases[] = {
            {"SELECT 1; SELECT 2", primary, multi_statement},
            {"SELECT 1; DELETE FROM t", primary, multi_statement},
            {"SELECT 1;SELECT", primary, multi_statement},
            {"SELECT 1;;SELECT 2", primary, multi_statement},
            {"BEGIN READ ONLY; SELECT 1; COMMIT", primary, multi_statement},
            {"SELECT 1; /* c */ SELECT 2", primary, multi_statement},
            {"SELECT 1;\n-- c\nSELECT 2", primary, multi_statement},
            {"SET x = 1; SELECT 1", primary, multi_statement},
            {"SELECT pg_is_in_recovery(); SHOW default_transaction_read_only", primary,
             multi_statement},
            {"SELECT 1; 'unterminated", primary, unparsable},
            {"SELECT 1; ;", replica, read_only_select},
            {"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql", primary,
             utility_statement},
        };
        check(cases);
    }

    TEST_CASE("transaction blocks: only a declared READ ONLY start may go to a replica") {
        const Case cases[] = {
            {"BEGIN", primary, transaction_begin},
            {"begin", primary, transaction_begin},
            {"BEGIN WORK", primary, transaction_begin},
            {"BEGIN TRANSACTION", primary, transaction_begin},
            {"START TRANSACTION", primary, transaction_begin},
            {"BEGIN READ WRITE", primary, transaction_begin},
            {"BEGIN ISOLATION LEVEL REPEATABLE READ", primary, transaction_begin},
            {"BEGIN ISOLATION LEVEL SERIALIZABLE", primary, transaction_begin},
            {"BEGIN DEFERRABLE", primary, transaction_begin},
            {"BEGIN READ ONLY, READ WRITE", primary, transaction_begin},
            {"BEGIN READ WRITE READ ONLY", primary, transaction_begin},
            {"BEGIN READ ONLY", replica, explicit_read_only},
            {"begin read only;", replica, explicit_read_only},
            {"bEgIn ReAd OnLy", replica, explicit_read_only},
            {"BEGIN TRANSACTION READ ONLY", replica, explicit_read_only},
            {"BEGIN WORK READ ONLY", replica, explicit_read_only},
            {"START TRANSACTION READ ONLY", replica, explicit_read_only},
            {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", replica, explicit_read_only},
            {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", replica, explicit_read_only},
            {"BEGIN READ ONLY, ISOLATION LEVEL READ COMMITTED", replica, explicit_read_only},
            {"BEGIN READ ONLY DEFERRABLE", replica, explicit_read_only},
            {"BEGIN NOT DEFERRABLE, READ ONLY", replica, explicit_read_only},
            {"START TRANSACTION ISOLATION LEVEL READ UNCOMMITTED READ ONLY", replica,
             explicit_read_only},
            {"BEGIN /* c */ READ -- c\n ONLY", replica, explicit_read_only},
            {"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE", primary, serializable},
            {"BEGIN READ ONLY ISOLATION LEVEL SERIALIZABLE", primary, serializable},
            {"BEGIN READ", primary, unparsable},
            {"BEGIN READ ONLY,", primary, unparsable},
            {"BEGIN , READ ONLY", primary, unparsable},
            {"BEGIN READ ONLY,, READ WRITE", primary, unparsable},
            {"BEGIN ISOLATION LEVEL", primary, unparsable},
            {"BEGIN ISOLATION LEVEL READ", primary, unparsable},
            {"BEGIN ISOLATION LEVEL REPEATABLE", primary, unparsable},
            {"BEGIN ISOLATION SERIALIZABLE", primary, unparsable},
            {"BEGIN NOT READ ONLY", primary, unparsable},
            {"BEGIN READ ONLY please", primary, unparsable},
            {"START", primary, unparsable},
            {"START READ ONLY", primary, unparsable},
        };
        check(cases);
    }

    TEST_CASE("transaction control without a transaction") {
        const Case cases[] = {
            {"COMMIT", primary, transaction_control},
            {"END", primary, transaction_control},
            {"ROLLBACK", primary, transaction_control},
            {"ABORT", primary, transaction_control},
            {"COMMIT AND CHAIN", primary, transaction_control},
            {"SAVEPOINT a", primary, transaction_control},
            {"RELEASE SAVEPOINT a", primary, transaction_control},
            {"ROLLBACK TO SAVEPOINT a", primary, transaction_control},
            {"PREPARE TRANSACTION 'x'", primary, transaction_control},
            {"COMMIT PREPARED 'x'", primary, transaction_control},
            {"ROLLBACK PREPARED 'x'", primary, transaction_control},
            {"SET TRANSACTION READ ONLY", replica, explicit_read_only},
            {"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", replica,
             explicit_read_only},
            {"SET TRANSACTION READ WRITE", primary, session_statement},
            {"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", primary, session_statement},
            {"SET TRANSACTION READ ONLY, READ WRITE", primary, session_statement},
            {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", primary, serializable},
            {"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", primary, session_statement},
            {"SET TRANSACTION READ", primary, unparsable},
        };
        check(cases);
    }

    TEST_CASE("default_transaction_read_only: what a statement does to it") {
        using enum DefaultReadOnly;
        const Case cases[] = {
            {"SET default_transaction_read_only = on", primary, set_default_read_only, on},
            {"SET default_transaction_read_only TO off", primary, set_default_read_only, off},
            {"set default_transaction_read_only = true", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = FALSE", primary, set_default_read_only, off},
            {"SET default_transaction_read_only = 1", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = 0", primary, set_default_read_only, off},
            {"SET default_transaction_read_only = 'on'", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = 'OFF'", primary, set_default_read_only, off},
            {"SET default_transaction_read_only = \"on\"", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = yes", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = n", primary, set_default_read_only, off},
            {"SET default_transaction_read_only = t", primary, set_default_read_only, on},
            {"SET default_transaction_read_only = of", primary, set_default_read_only, off},
            {"SET SESSION default_transaction_read_only = on", primary, set_default_read_only, on},
            {"SET \"default_transaction_read_only\" = on", primary, set_default_read_only, on},
            {"SET \"Default_Transaction_Read_Only\" = on", primary, set_default_read_only, on},
            {"RESET \"DEFAULT_TRANSACTION_READ_ONLY\"", primary, set_default_read_only, reset},
            {"SET DEFAULT_TRANSACTION_READ_ONLY = ON;", primary, set_default_read_only, on},
            {"SET default_transaction_read_only TO DEFAULT", primary, set_default_read_only, reset},
            {"SET default_transaction_read_only = default", primary, set_default_read_only, reset},
            {"RESET default_transaction_read_only", primary, set_default_read_only, reset},
            {"RESET ALL", primary, session_statement, reset},
            {"DISCARD ALL", primary, session_statement, reset},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", primary, set_default_read_only,
             on},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ "
             "ONLY",
             primary, set_default_read_only, on},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", primary,
             set_default_read_only, off},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, READ WRITE", primary,
             set_default_read_only, off},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", primary,
             session_statement},
            {"SET SESSION CHARACTERISTICS TRANSACTION READ ONLY", primary, unparsable},
            {"SET SESSION CHARACTERISTICS AS TRANSACTION READ", primary, unparsable},
            {"/* pgmarina:replica */ SET default_transaction_read_only = on", replica, hint, on},
            // Values the server refuses change nothing.
            {"SET default_transaction_read_only = o", primary, session_statement},
            {"SET default_transaction_read_only = maybe", primary, session_statement},
            {"SET default_transaction_read_only = 2", primary, session_statement},
            {"SET default_transaction_read_only = 1.0", primary, session_statement},
            {"SET default_transaction_read_only = 'on '", primary, session_statement},
            {"SET default_transaction_read_only = ''", primary, session_statement},
            {"SET default_transaction_read_only = on, off", primary, session_statement},
            {"SET default_transaction_read_only = E'on'", primary, session_statement},
            {"SET default_transaction_read_only =", primary, session_statement},
            {"SET default_transaction_read_only", primary, session_statement},
            // Only for the current transaction, or another setting.
            {"SET LOCAL default_transaction_read_only = on", primary, session_statement},
            {"SET transaction_read_only = on", primary, session_statement},
            {"RESET transaction_read_only", primary, session_statement},
            {"SET public.default_transaction_read_only = on", primary, session_statement},
        };
        check(cases);
    }

    TEST_CASE("SHOW") {
        const Case cases[] = {
            {"SHOW search_path", replica, show},
            {"show server_version", replica, show},
            {"SHOW ALL", replica, show},
            {"SHOW TRANSACTION ISOLATION LEVEL", replica, show},
            {"SHOW default_transaction_read_only", replica, show},
            {"SHOW \"TimeZone\"", replica, show},
        };
        check(cases);
    }

    TEST_CASE("EXPLAIN answers for the statement it explains") {
        const Case cases[] = {
            {"EXPLAIN SELECT * FROM t", replica, read_only_select},
            {"EXPLAIN ANALYZE SELECT * FROM t", replica, read_only_select},
            {"explain analyse verbose select 1", replica, read_only_select},
            {"EXPLAIN VERBOSE SELECT 1", replica, read_only_select},
            {"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT 1", replica, read_only_select},
            {"EXPLAIN (ANALYZE) WITH a AS (SELECT 1) SELECT * FROM a", replica, read_only_select},
            {"EXPLAIN VALUES (1)", replica, read_only_select},
            {"EXPLAIN SELECT nextval('s')", primary, function_forbidden},
            {"EXPLAIN ANALYZE SELECT my_func()", primary, function_not_allowed},
            {"EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", primary, locking_clause},
            {"EXPLAIN INSERT INTO t VALUES (1)", primary, write_statement},
            {"EXPLAIN ANALYZE DELETE FROM t", primary, write_statement},
            {"EXPLAIN (ANALYZE) UPDATE t SET x = 1", primary, write_statement},
            {"EXPLAIN ANALYZE WITH a AS (SELECT 1) UPDATE t SET x = 1", primary, write_statement},
            {"EXPLAIN CREATE TABLE t2 AS SELECT 1", primary, utility_statement},
            {"EXPLAIN EXECUTE p(1)", primary, session_statement},
            {"EXPLAIN DECLARE c CURSOR FOR SELECT 1", primary, session_statement},
            {"EXPLAIN SHOW x", primary, unknown_statement},
            {"EXPLAIN EXPLAIN SELECT 1", primary, unparsable},
            {"EXPLAIN (ANALYZE SELECT 1", primary, unparsable},
            {"EXPLAIN", primary, unparsable},
            // Valid, but "(" after EXPLAIN is read as its option list.
            {"EXPLAIN (SELECT 1)", primary, unparsable},
        };
        check(cases);
    }

    TEST_CASE("COPY: TO STDOUT reads, FROM and files write") {
        const Case cases[] = {
            {"COPY t TO STDOUT", replica, copy_to_stdout},
            {"copy t to stdout", replica, copy_to_stdout},
            {"COPY public.t (a, b) TO STDOUT WITH (FORMAT csv, HEADER, FORCE_QUOTE (a))", replica,
             copy_to_stdout},
            {"COPY \"T\" TO STDOUT", replica, copy_to_stdout},
            {"COPY BINARY t TO STDOUT", replica, copy_to_stdout},
            {"COPY t TO STDOUT CSV HEADER", replica, copy_to_stdout},
            {"COPY (SELECT * FROM t WHERE a > 1) TO STDOUT WITH CSV", replica, copy_to_stdout},
            {"COPY (WITH a AS (SELECT 1) SELECT * FROM a) TO STDOUT", replica, copy_to_stdout},
            {"COPY ((SELECT 1) UNION (SELECT 2)) TO STDOUT", replica, copy_to_stdout},
            {"COPY (SELECT nextval('s')) TO STDOUT", primary, function_forbidden},
            {"COPY (SELECT my_func()) TO STDOUT", primary, function_not_allowed},
            {"COPY (SELECT * FROM t FOR UPDATE) TO STDOUT", primary, locking_clause},
            {"COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT", primary, write_statement},
            {"COPY (DELETE FROM t RETURNING *) TO STDOUT", primary, write_statement},
            {"COPY t FROM STDIN", primary, write_statement},
            {"COPY t (a) FROM STDIN WITH (FORMAT csv)", primary, write_statement},
            {"COPY t FROM '/tmp/x'", primary, write_statement},
            {"COPY t TO '/tmp/x'", primary, write_statement},
            {"COPY t TO PROGRAM 'gzip > /tmp/x'", primary, write_statement},
            {"COPY (SELECT 1) TO '/tmp/x'", primary, write_statement},
            {"COPY t", primary, unparsable},
            {"COPY TO STDOUT", primary, unparsable},
            {"COPY (SELECT 1", primary, unparsable},
            {"COPY (SELECT 1) STDOUT", primary, unparsable},
            {"COPY t (a, b TO STDOUT", primary, unparsable},
            {"COPY s. TO STDOUT", primary, unparsable},
            {"COPY 'x' TO STDOUT", primary, unparsable},
        };
        check(cases);
    }

    TEST_CASE("writes, DDL and maintenance go to the primary") {
        const Case cases[] = {
            {"INSERT INTO t VALUES (1)", primary, write_statement},
            {"insert into t select * from u", primary, write_statement},
            {"INSERT INTO t VALUES ('select 1')", primary, write_statement},
            {"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1", primary,
             write_statement},
            {"UPDATE t SET x = 1 WHERE id = $1", primary, write_statement},
            {"DELETE FROM t WHERE id = 1", primary, write_statement},
            {"MERGE INTO t USING s ON true WHEN MATCHED THEN DO NOTHING", primary, write_statement},
            {"TRUNCATE t", primary, write_statement},
            {"CREATE TABLE t (id int)", primary, utility_statement},
            {"CREATE TEMP TABLE t AS SELECT 1", primary, utility_statement},
            {"CREATE MATERIALIZED VIEW v AS SELECT 1", primary, utility_statement},
            {"ALTER TABLE t ADD COLUMN x int", primary, utility_statement},
            {"DROP TABLE t", primary, utility_statement},
            {"GRANT SELECT ON t TO u", primary, utility_statement},
            {"REVOKE ALL ON t FROM u", primary, utility_statement},
            {"COMMENT ON TABLE t IS 'x'", primary, utility_statement},
            {"SECURITY LABEL ON TABLE t IS 'x'", primary, utility_statement},
            {"VACUUM t", primary, utility_statement},
            {"ANALYZE t", primary, utility_statement},
            {"CLUSTER t", primary, utility_statement},
            {"REINDEX TABLE t", primary, utility_statement},
            {"REFRESH MATERIALIZED VIEW v", primary, utility_statement},
            {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", primary, utility_statement},
            {"DO $$ BEGIN PERFORM 1; END $$", primary, utility_statement},
            {"CALL p()", primary, utility_statement},
            {"CHECKPOINT", primary, utility_statement},
            {"IMPORT FOREIGN SCHEMA s FROM SERVER f INTO l", primary, utility_statement},
            {"REASSIGN OWNED BY a TO b", primary, utility_statement},
        };
        check(cases);
    }

    TEST_CASE("session state goes to the primary") {
        const Case cases[] = {
            {"SET search_path TO app", primary, session_statement},
            {"SET x = 1", primary, session_statement},
            {"SET SESSION AUTHORIZATION u", primary, session_statement},
            {"SET ROLE r", primary, session_statement},
            {"SET LOCAL statement_timeout = 0", primary, session_statement},
            {"SET TIME ZONE 'UTC'", primary, session_statement},
            {"RESET search_path", primary, session_statement},
            {"RESET SESSION AUTHORIZATION", primary, session_statement},
            {"DISCARD PLANS", primary, session_statement},
            {"PREPARE p AS SELECT 1", primary, session_statement},
            {"EXECUTE p", primary, session_statement},
            {"DEALLOCATE p", primary, session_statement},
            {"DEALLOCATE ALL", primary, session_statement},
            {"LISTEN c", primary, session_statement},
            {"UNLISTEN *", primary, session_statement},
            {"NOTIFY c, 'x'", primary, session_statement},
            {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", primary, session_statement},
            {"FETCH 10 FROM c", primary, session_statement},
            {"MOVE c", primary, session_statement},
            {"CLOSE c", primary, session_statement},
            {"LOAD 'auto_explain'", primary, session_statement},
        };
        check(cases);
    }

    TEST_CASE("unknown and unparsable texts go to the primary") {
        const Case cases[] = {
            {"FOO BAR", primary, unknown_statement},
            {"SELEC 1", primary, unknown_statement},
            {"VALUE 1", primary, unknown_statement},
            {"SELECT 'unterminated", primary, unparsable},
            {"SELECT \"unterminated", primary, unparsable},
            {"SELECT $$unterminated", primary, unparsable},
            {"SELECT $a$ x $b$", primary, unparsable},
            {R"(SELECT E'\')", primary, unparsable},
            {"SELECT 1 /* x", primary, unparsable},
            {"SELECT 1 /* /* */", primary, unparsable},
            {"SELECT (1", primary, unparsable},
            {"SELECT 1)", primary, unparsable},
            {"SELECT ARRAY[1", primary, unparsable},
            {"(SELECT 1", primary, unparsable},
            {"SELECT \\d", primary, unparsable},
            {"SELECT {1}", primary, unparsable},
            {"SELECT $", primary, unparsable},
            {"SELECT $foo", primary, unparsable},
            {"\"SELECT\" 1", primary, unparsable},
            {"1", primary, unparsable},
            {"'SELECT 1'", primary, unparsable},
            {"+", primary, unparsable},
            {"SELECT 1\0; DROP TABLE t"sv, primary, unparsable},
            {"\0"sv, primary, unparsable},
        };
        check(cases);
    }

    TEST_CASE("identifiers beyond ASCII") {
        const Case cases[] = {
            {"SELECT naïve, \"日本\" FROM données", replica, read_only_select},
            {"SELECT * FROM таблица WHERE имя = 'x'", replica, read_only_select},
            {"SELECT \"Ñame\", Ñame FROM t", replica, read_only_select},
            {"SELECT lower(名前) FROM 表", replica, read_only_select},
            {"SELECT 関数(1)", primary, function_not_allowed},
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
            {"SELECT pg_is_in_recovery()", primary, role_probe},
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
            {"SELECT pg_is_in_recovery()", primary, role_probe},
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

TEST_SUITE("routing.classify limits") {
    TEST_CASE("long texts") {
        std::string sum = "SELECT 1";
        for (int i = 0; i < 100'000; ++i) {
            sum += " + 1";
        }
        CHECK(classify(sum) == Classification{replica, read_only_select});
        CHECK(classify(sum + ", nextval('s')") == Classification{primary, function_forbidden});

        std::string in_list = "SELECT * FROM t WHERE id IN (0";
        for (int i = 1; i < 100'000; ++i) {
            in_list += ", " + std::to_string(i);
        }
        CHECK(classify(in_list + ")") == Classification{replica, read_only_select});
        CHECK(classify(in_list) == Classification{primary, unparsable});

        const std::string literal = "SELECT '" + std::string(1 << 20, 'x') + "'";
        CHECK(classify(literal) == Classification{replica, read_only_select});
    }

    TEST_CASE("deep nesting is counted, not recursed into") {
        const int depth = 100'000;
        const std::string open(depth, '('), close(depth, ')');
        CHECK(classify("SELECT " + open + "1" + close) ==
              Classification{replica, read_only_select});
        CHECK(classify(open + "SELECT 1" + close) == Classification{replica, read_only_select});
        CHECK(classify("SELECT " + open + "nextval('s')" + close) ==
              Classification{primary, function_forbidden});
        CHECK(classify("SELECT " + open + "1" + close + ")") ==
              Classification{primary, unparsable});
        CHECK(classify("SELECT " + open + "1") == Classification{primary, unparsable});
        std::string comment = "SELECT 1 ";
        for (int i = 0; i < depth; ++i) {
            comment += "/*";
        }
        for (int i = 0; i < depth; ++i) {
            comment += "*/";
        }
        CHECK(classify(comment) == Classification{replica, read_only_select});
    }

    TEST_CASE("WITH lists deeper than the tracked depth only cost a trip to the primary") {
        const std::string shallow(10, '('), shallow_close(10, ')');
        const std::string deep(70, '('), deep_close(70, ')');
        const std::string query = "WITH a(x) AS (SELECT 1), b(y) AS (SELECT 2) SELECT * FROM a";
        CHECK(classify("SELECT * FROM " + shallow + query + shallow_close + " s") ==
              Classification{replica, read_only_select});
        CHECK(classify("SELECT * FROM " + deep + query + deep_close + " s") ==
              Classification{primary, function_not_allowed});
    }

    TEST_CASE("a function name longer than the server keeps is not vouched for") {
        const std::string name(70, 'f');
        CHECK(classify("SELECT " + name + "()") == Classification{primary, function_not_allowed});
        CHECK(classify("SELECT lower(" + name + ")") == Classification{replica, read_only_select});
    }

    TEST_CASE("regression fuzz_classify: a hint over unbalanced parentheses depended on the "
              "options") {
        // The query scan stopped at the unlisted call and the hint applied; with
        // default_transaction_read_only on it read on, found the parentheses open and the hint
        // did not apply. Balance is now checked for the whole text before any statement.
        // Seed: tests/fuzz/corpus/fuzz_classify/crash_hint_over_unbalanced_parens.
        const std::string text = "((((fa\xbc/* pgmarina:replica */((S\v`\v((E";
        ClassifyOptions read_only;
        read_only.default_transaction_read_only = true;
        CHECK(classify(text) == Classification{primary, unparsable});
        CHECK(classify(text, read_only) == Classification{primary, unparsable});
        CHECK(classify("/* pgmarina:replica */ COPY (SELECT f()) TO") ==
              classify("/* pgmarina:replica */ COPY (SELECT f()) TO", read_only));
    }

    TEST_CASE("the same text always gets the same answer") {
        const std::string text = "WITH a(x) AS (SELECT 1) SELECT lower(x) FROM a";
        const Classification first = classify(text);
        for (int i = 0; i < 3; ++i) {
            CHECK(classify(std::string(text)) == first);
        }
    }

    TEST_CASE("every reason and target has its own name") {
        std::set<std::string_view> names;
        for (int r = 0; r <= static_cast<int>(unknown_statement); ++r) {
            const std::string_view name = to_string(static_cast<Reason>(r));
            CHECK(name != "unknown");
            names.insert(name);
        }
        CHECK(names.size() == static_cast<std::size_t>(unknown_statement) + 1);
        CHECK(to_string(read_only_select) == "read_only_select");
        CHECK(to_string(function_not_allowed) == "function_not_allowed");
        CHECK(to_string(replica) == "replica_ok");
        CHECK(to_string(primary) == "primary");
    }
}

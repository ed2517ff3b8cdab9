// routing::classify on statements other than queries: transaction control, SET and
// default_transaction_read_only, SHOW, EXPLAIN, COPY, writes, DDL and session state.

#include "routing/classify.hpp"

#include "tests/support/classify_cases.hpp"

#include <doctest/doctest.h>

namespace {

using namespace routing::test;

} // namespace

TEST_SUITE("routing.classify") {
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
}

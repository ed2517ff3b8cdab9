// pgmarina in front of a real PostgreSQL 15, driven by libpq: the protocol flows a transaction
// pooler must carry unchanged (simple and extended queries, pipelines, COPY, FunctionCall,
// notices, parameter reports), when it may hand a server to another client, and the session and
// statement pool modes. Pools are one or two servers so that clients really share them.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <libpq/libpq-fs.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
using pq::all_results;
using pq::Clock;
using pq::describe;
using pq::next_result;
using pq::sqlstate_of;
using pq::status_of;
using pq::value_of;
using pq::wait_readable;

// `app` shares one server between all its clients; `big` is `app` again, for a case that may
// leave its server stuck; `sess` and `stmt` are the same database in the other two pool modes.
std::string config_for(const PgCluster& cluster, std::uint16_t port,
                       const std::filesystem::path& socket_dir) {
    const std::string hosts = "hosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
    return "[pgmarina]\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(port) + "\"]\nunix_socket_dir = \"" + socket_dir.string() +
           "\"\n"
           "workers = 2\n"
           "default_pool_size = 1\n"
           "client_login_timeout = 5\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\n" +
           hosts + "[databases.big]\ndbname = \"app\"\n" + hosts +
           "[databases.sess]\ndbname = \"app\"\npool_mode = \"session\"\n" + hosts +
           "[databases.stmt]\ndbname = \"app\"\npool_mode = \"statement\"\n" + hosts +
           "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

// Removes the socket directory once pgmarina (declared after it) has stopped.
struct SocketDir {
    std::filesystem::path path =
        support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-sock.");
    ~SocketDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

// One cluster and one pgmarina for every case: starting them is most of a case's cost.
struct Setup {
    PgCluster cluster{{.replicas = 0}};
    SocketDir socket_dir;
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port, socket_dir.path), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina))

pq::Connection connect(std::string_view dbname) {
    auto conn = pq::Connection::connect(
        setup().pgmarina.conninfo("scram_user", setup().cluster.password("scram_user"), dbname));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

// 1 MB of text, for messages pgmarina cannot hold whole.
std::string long_text() {
    std::string text(1'000'000, ' ');
    for (std::size_t i = 0; i < text.size(); ++i)
        text[i] = static_cast<char>('a' + i % 26);
    return text;
}

// Runs a blocking libpq call (the large-object API has no asynchronous form) on another thread;
// if it has not returned within 10 s, shutting the socket down makes libpq give up instead of
// hanging the test.
template <class Call>
auto bounded(PGconn* conn, Call call) {
    auto future = std::async(std::launch::async, call);
    if (future.wait_for(10s) != std::future_status::ready) {
        ::shutdown(PQsocket(conn), SHUT_RDWR);
        future.wait();
        FAIL("a blocking libpq call did not return within 10 s");
    }
    return future.get();
}

struct Notice {
    std::string severity;
    std::string sqlstate;
    std::string message;
};

// libpq's notice receiver: NoticeResponses, and an ErrorResponse that arrives when no query is
// running (a proxy's FATAL after ReadyForQuery).
void collect_notice(void* notices, const PGresult* result) {
    const auto field = [result](int code) {
        const char* text = PQresultErrorField(result, code);
        return std::string(text != nullptr ? text : "");
    };
    static_cast<std::vector<Notice>*>(notices)->push_back({field(PG_DIAG_SEVERITY_NONLOCALIZED),
                                                           field(PG_DIAG_SQLSTATE),
                                                           field(PG_DIAG_MESSAGE_PRIMARY)});
}

} // namespace

TEST_SUITE("integration.pooling") {

    TEST_CASE("simple queries, one statement or several in one string") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        CHECK(conn.exec("SELECT 'one'").value(0, 0) == "one");

        REQUIRE(PQsendQuery(conn.native(), "SELECT 1; SELECT 2, 'two'") == 1);
        auto results = all_results(conn.native());
        REQUIRE(results.size() == 2);
        CHECK(value_of(results[0]) == "1");
        CHECK(value_of(results[1], 0, 1) == "two");

        // An error ends the string: the statements after it do not run, and the implicit
        // transaction is rolled back.
        REQUIRE(PQsendQuery(conn.native(), "SELECT 1; SELECT 1/0; SELECT 3") == 1);
        results = all_results(conn.native());
        REQUIRE(results.size() == 2);
        CHECK(value_of(results[0]) == "1");
        CHECK(sqlstate_of(results[1]) == "22012");
        CHECK(PQtransactionStatus(conn.native()) == PQTRANS_IDLE);
        CHECK(conn.exec("SELECT 4").value(0, 0) == "4");
    }

    TEST_CASE("extended protocol: named prepared statement and unnamed PQexecParams") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        PGconn* raw = conn.native();
        REQUIRE(PQsendPrepare(raw, "add", "SELECT $1::int + $2::int", 2, nullptr) == 1);
        auto results = all_results(raw);
        REQUIRE(results.size() == 1);
        CHECK(status_of(results[0]) == "PGRES_COMMAND_OK");
        for (const char* second : {"3", "40"}) {
            const char* values[] = {"2", second};
            REQUIRE(PQsendQueryPrepared(raw, "add", 2, values, nullptr, nullptr, 0) == 1);
            results = all_results(raw);
            REQUIRE(results.size() == 1);
            CHECK(value_of(results[0]) == std::to_string(2 + std::stoi(second)));
        }
        const char* text[] = {"a"};
        REQUIRE(PQsendQueryParams(raw, "SELECT $1::text || 'x'", 1, nullptr, text, nullptr, nullptr,
                                  0) == 1);
        results = all_results(raw);
        REQUIRE(results.size() == 1);
        CHECK(value_of(results[0]) == "ax");
    }

    TEST_CASE("pipelined batches: an error aborts only its batch, and all are answered in order") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        PGconn* raw = conn.native();
        REQUIRE(PQenterPipelineMode(raw) == 1);
        const auto send = [raw](const char* sql) {
            REQUIRE(PQsendQueryParams(raw, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
        };
        send("SELECT 1");
        REQUIRE(PQpipelineSync(raw) == 1);
        send("SELECT 1/0");
        send("SELECT 2");
        REQUIRE(PQpipelineSync(raw) == 1);
        send("SELECT 3");
        REQUIRE(PQpipelineSync(raw) == 1);
        REQUIRE(PQflush(raw) == 0);

        // The three batches are answered without the client reading: the server goes back to
        // the pool, and another client of the one-server pool gets it.
        auto other = connect("app");
        CHECK(other.exec("SELECT 'other'").value(0, 0) == "other");

        const auto deadline = Clock::now() + 10s;
        std::vector<std::string> seen;
        for (int i = 0; i < 10; ++i)
            seen.push_back(describe(next_result(raw, deadline)));
        const std::vector<std::string> expected = {
            "PGRES_TUPLES_OK 1",   "(no result)",
            "PGRES_PIPELINE_SYNC", "PGRES_FATAL_ERROR 22012",
            "(no result)",         "PGRES_PIPELINE_ABORTED",
            "(no result)",         "PGRES_PIPELINE_SYNC",
            "PGRES_TUPLES_OK 3",   "(no result)",
        };
        CHECK(seen == expected);
        CHECK(status_of(next_result(raw, deadline)) == "PGRES_PIPELINE_SYNC");
        CHECK(PQexitPipelineMode(raw) == 1);
        CHECK(conn.exec("SELECT 5").value(0, 0) == "5");
    }

    TEST_CASE("a Flush request gets the results before the Sync") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        PGconn* raw = conn.native();
        REQUIRE(PQenterPipelineMode(raw) == 1);
        REQUIRE(PQsendQueryParams(raw, "SELECT 4", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
        REQUIRE(PQsendFlushRequest(raw) == 1);
        REQUIRE(PQflush(raw) == 0);
        const auto deadline = Clock::now() + 10s;
        auto result = next_result(raw, deadline);
        CHECK(status_of(result) == "PGRES_TUPLES_OK");
        CHECK(value_of(result) == "4");
        CHECK(next_result(raw, deadline) == nullptr);

        REQUIRE(PQpipelineSync(raw) == 1);
        REQUIRE(PQflush(raw) == 0);
        CHECK(status_of(next_result(raw, deadline)) == "PGRES_PIPELINE_SYNC");
        CHECK(PQexitPipelineMode(raw) == 1);
        CHECK(conn.exec("SELECT 5").value(0, 0) == "5");
    }

    TEST_CASE("a Bind and a DataRow longer than 64 kB stream through") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        // Over pgmarina's 64 kB hold limit, so it forwards them in pieces.
        const std::string big = long_text();
        const char* values[] = {big.c_str()};
        REQUIRE(PQsendQueryParams(conn.native(), "SELECT length($1), $1 || $1", 1, nullptr, values,
                                  nullptr, nullptr, 0) == 1);
        const auto results = all_results(conn.native());
        REQUIRE(results.size() == 1);
        CHECK(value_of(results[0]) == "1000000");
        CHECK((value_of(results[0], 0, 1) == big + big));
        // The server is in step for the next client of the pool.
        auto other = connect("app");
        CHECK(other.exec("SELECT 'in step'").value(0, 0) == "in step");
    }

    TEST_CASE("a simple Query longer than 64 kB streams through") {
        PGMARINA_LOG_ON_FAILURE();
        // A pool of its own: a session stuck here must not take `app`'s only server.
        auto conn = connect("big");
        const auto echoed = conn.exec("SELECT length('" + long_text() + "')", 3s);
        CHECK_MESSAGE(echoed.ok(), echoed.error_message());
        CHECK(echoed.value(0, 0) == "1000000");
        auto other = connect("big");
        CHECK(other.exec("SELECT 'in step'", 3s).value(0, 0) == "in step");
    }

    TEST_CASE("COPY FROM STDIN and COPY TO STDOUT; a failed COPY leaves the client usable") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        PGconn* raw = conn.native();
        REQUIRE(conn.exec("CREATE TABLE copied (id int, name text)").ok());

        conn.exec("COPY copied FROM STDIN"); // stops at CopyInResponse
        REQUIRE(PQtransactionStatus(raw) == PQTRANS_ACTIVE);
        for (int id = 1; id <= 1000; ++id) {
            const std::string line = std::to_string(id) + "\tname " + std::to_string(id) + "\n";
            REQUIRE(PQputCopyData(raw, line.data(), static_cast<int>(line.size())) == 1);
        }
        REQUIRE(PQputCopyEnd(raw, nullptr) == 1);
        auto results = all_results(raw);
        REQUIRE(results.size() == 1);
        CHECK(status_of(results[0]) == "PGRES_COMMAND_OK");
        CHECK(std::string(PQcmdTuples(results[0].get())) == "1000");

        conn.exec("COPY (SELECT * FROM copied ORDER BY id) TO STDOUT");
        REQUIRE(PQtransactionStatus(raw) == PQTRANS_ACTIVE);
        std::vector<std::string> lines;
        const auto deadline = Clock::now() + 10s;
        for (;;) {
            char* buffer = nullptr;
            const int n = PQgetCopyData(raw, &buffer, 1);
            if (n > 0) {
                lines.emplace_back(buffer, static_cast<std::size_t>(n));
                PQfreemem(buffer);
            } else if (n == 0) {
                REQUIRE(wait_readable(PQsocket(raw), deadline));
                REQUIRE(PQconsumeInput(raw) == 1);
            } else {
                break;
            }
        }
        REQUIRE(lines.size() == 1000);
        CHECK(lines.front() == "1\tname 1\n");
        CHECK(lines.back() == "1000\tname 1000\n");
        results = all_results(raw);
        REQUIRE(results.size() == 1);
        CHECK(std::string(PQcmdStatus(results[0].get())) == "COPY 1000");

        // A bad row fails the COPY at once; the rows the client sends after it (and its
        // CopyDone) reach pgmarina when the server may already serve someone else.
        conn.exec("COPY copied FROM STDIN");
        REQUIRE(PQtransactionStatus(raw) == PQTRANS_ACTIVE);
        const std::string bad = "not a number\tbad\n";
        REQUIRE(PQputCopyData(raw, bad.data(), static_cast<int>(bad.size())) == 1);
        REQUIRE(PQflush(raw) == 0);
        std::this_thread::sleep_for(200ms);
        for (int id = 0; id < 100; ++id) {
            const std::string late = "7\tlate row\n";
            REQUIRE(PQputCopyData(raw, late.data(), static_cast<int>(late.size())) == 1);
        }
        REQUIRE(PQputCopyEnd(raw, nullptr) == 1);
        results = all_results(raw);
        REQUIRE(results.size() == 1);
        CHECK(sqlstate_of(results[0]) == "22P02");
        CHECK(PQtransactionStatus(raw) == PQTRANS_IDLE);
        CHECK(conn.exec("SELECT count(*) FROM copied").value(0, 0) == "1000");
        auto other = connect("app");
        CHECK(other.exec("SELECT count(*) FROM copied").value(0, 0) == "1000");
    }

    TEST_CASE("the large-object API works through FunctionCall messages") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        PGconn* raw = conn.native();
        const std::string data = "large object through pgmarina";
        REQUIRE(conn.exec("BEGIN").ok());
        struct Outcome {
            Oid oid = InvalidOid;
            int written = -1;
            std::string read;
            int closed = -1;
        };
        const Outcome outcome = bounded(raw, [raw, &data] {
            Outcome out;
            out.oid = lo_creat(raw, INV_READ | INV_WRITE);
            const int fd = lo_open(raw, out.oid, INV_READ | INV_WRITE);
            out.written = lo_write(raw, fd, data.data(), data.size());
            lo_lseek(raw, fd, 0, SEEK_SET);
            std::string buffer(100, '\0');
            const int n = lo_read(raw, fd, buffer.data(), buffer.size());
            out.read = buffer.substr(0, n > 0 ? static_cast<std::size_t>(n) : 0);
            out.closed = lo_close(raw, fd);
            return out;
        });
        REQUIRE_MESSAGE(outcome.oid != InvalidOid, PQerrorMessage(raw));
        CHECK(outcome.written == static_cast<int>(data.size()));
        CHECK(outcome.read == data);
        CHECK(outcome.closed == 0);
        REQUIRE(conn.exec("COMMIT").ok());

        const std::string oid = std::to_string(outcome.oid);
        CHECK(conn.exec("SELECT convert_from(lo_get(" + oid + "), 'UTF8')").value(0, 0) == data);
        CHECK(bounded(raw, [raw, &outcome] { return lo_unlink(raw, outcome.oid); }) == 1);
        CHECK(PQtransactionStatus(raw) == PQTRANS_IDLE);
    }

    TEST_CASE("a failed transaction keeps its server until ROLLBACK") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        REQUIRE(conn.exec("BEGIN").ok());
        CHECK(conn.exec("SELECT 1/0").sqlstate() == "22012");
        CHECK(PQtransactionStatus(conn.native()) == PQTRANS_INERROR);
        CHECK(conn.exec("SELECT 1").sqlstate() == "25P02");
        CHECK(conn.exec("ROLLBACK").command_status() == "ROLLBACK");
        CHECK(PQtransactionStatus(conn.native()) == PQTRANS_IDLE);
        CHECK(conn.exec("SELECT 1").value(0, 0) == "1");
    }

    TEST_CASE("another client waits for the one-server pool until the transaction commits") {
        PGMARINA_LOG_ON_FAILURE();
        auto holder = connect("app");
        auto waiter = connect("app");
        REQUIRE(holder.exec("BEGIN").ok());
        REQUIRE(holder.exec("SELECT 1").ok());

        std::atomic<bool> answered{false};
        Clock::time_point answered_at;
        std::string answer;
        std::thread other([&] {
            answer = waiter.exec("SELECT 'waited'").value(0, 0);
            answered_at = Clock::now();
            answered = true;
        });
        std::this_thread::sleep_for(500ms);
        const bool answered_early = answered;
        const auto committed_at = Clock::now();
        const bool committed = holder.exec("COMMIT").ok();
        other.join();
        CHECK_FALSE(answered_early);
        CHECK(committed);
        CHECK(answer == "waited");
        CHECK(answered_at >= committed_at);
    }

    TEST_CASE("NoticeResponse and ParameterStatus reach the client") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("app");
        std::vector<Notice> notices;
        PQsetNoticeReceiver(conn.native(), collect_notice, &notices);
        REQUIRE(conn.exec("DO $$ BEGIN RAISE NOTICE 'pooled notice %', 42; END $$").ok());
        REQUIRE(notices.size() == 1);
        CHECK(notices[0].severity == "NOTICE");
        CHECK(notices[0].message == "pooled notice 42");

        REQUIRE(conn.exec("SET application_name = 'abc'").ok());
        CHECK(std::string(PQparameterStatus(conn.native(), "application_name")) == "abc");
        // The next transaction may start on a reset server: pgmarina sets it back.
        CHECK(conn.exec("SELECT current_setting('application_name')").value(0, 0) == "abc");
    }

    TEST_CASE("session mode: LISTEN gets a NOTIFY sent by another client") {
        PGMARINA_LOG_ON_FAILURE();
        auto listener = connect("sess");
        REQUIRE(listener.exec("LISTEN pool_channel").ok());
        auto notifier = connect("app");
        REQUIRE(notifier.exec("NOTIFY pool_channel, 'payload-1'").ok());

        PGconn* raw = listener.native();
        const auto deadline = Clock::now() + 5s;
        PGnotify* notify = nullptr;
        while ((notify = PQnotifies(raw)) == nullptr && wait_readable(PQsocket(raw), deadline)) {
            REQUIRE(PQconsumeInput(raw) == 1);
        }
        REQUIRE_MESSAGE(notify != nullptr, "no notification within 5 s");
        CHECK(std::string(notify->relname) == "pool_channel");
        CHECK(std::string(notify->extra) == "payload-1");
        PQfreemem(notify);
    }

    TEST_CASE("session mode: a temp table lasts the session, and the next client does not see "
              "it") {
        PGMARINA_LOG_ON_FAILURE();
        std::string first_pid;
        {
            auto first = connect("sess");
            REQUIRE(first.exec("CREATE TEMP TABLE session_only AS SELECT 7 AS v").ok());
            CHECK(first.exec("SELECT v FROM session_only").value(0, 0) == "7");
            CHECK(first.exec("SELECT count(*) FROM session_only").value(0, 0) == "1");
            first_pid = first.exec("SELECT pg_backend_pid()").value(0, 0);
        }
        // The one server of the pool, reset with DISCARD ALL.
        auto next = connect("sess");
        CHECK(next.exec("SELECT pg_backend_pid()").value(0, 0) == first_pid);
        const auto found = next.exec("SELECT to_regclass('pg_temp.session_only') IS NULL");
        CHECK_MESSAGE(found.value(0, 0) == "t", "the temp table outlived its session");
    }

    TEST_CASE("statement mode: single statements run, BEGIN is refused and closes the client") {
        PGMARINA_LOG_ON_FAILURE();
        auto conn = connect("stmt");
        auto other = connect("stmt");
        // One server for both: each statement gives it back.
        for (int turn = 0; turn < 3; ++turn) {
            CHECK(conn.exec("SELECT 'single'").value(0, 0) == "single");
            CHECK(other.exec("SELECT 'other'").value(0, 0) == "other");
        }

        // libpq reports the BEGIN's CommandComplete, then pgmarina's FATAL, then the closed
        // connection, each as a result of its own: look at all of them, not only the last.
        PGconn* raw = conn.native();
        REQUIRE(PQsendQuery(raw, "BEGIN") == 1);
        std::string sqlstates;
        std::string messages;
        const auto deadline = Clock::now() + 5s;
        for (;;) {
            while (PQisBusy(raw) != 0 && wait_readable(PQsocket(raw), deadline) &&
                   PQconsumeInput(raw) == 1) {}
            PGresult* result = PQgetResult(raw);
            if (result == nullptr) break;
            if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) {
                sqlstates += std::string(state) + " ";
            }
            messages += PQresultErrorMessage(result);
            PQclear(result);
            if (PQstatus(raw) == CONNECTION_BAD) break;
        }
        INFO("BEGIN's results: " << messages);
        CHECK(sqlstates.find("0A000") != std::string::npos);
        CHECK(messages.find("transaction blocks not allowed") != std::string::npos);
        CHECK(PQstatus(raw) == CONNECTION_BAD);

        CHECK(setup().pgmarina.running());
        auto next = connect("stmt");
        CHECK(next.exec("SELECT 'still serving'").value(0, 0) == "still serving");
    }

    TEST_CASE("clients connect over pgmarina's Unix socket") {
        PGMARINA_LOG_ON_FAILURE();
        const auto dir = setup().socket_dir.path;
        const std::string port = std::to_string(setup().pgmarina.port());
        CHECK(std::filesystem::is_socket(dir / (".s.PGSQL." + port)));
        auto conn = pq::Connection::connect(
            "host=" + dir.string() + " port=" + port +
            " user=scram_user password=" + setup().cluster.password("scram_user") +
            " dbname=app sslmode=disable connect_timeout=5");
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        CHECK(std::string(PQhost(conn.native())) == dir.string());
        CHECK(conn.exec("SELECT current_user, current_database()").value(0, 1) == "app");
        CHECK(conn.exec("SELECT 'over unix'").value(0, 0) == "over unix");
    }
}

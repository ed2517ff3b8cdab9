// Named prepared statements through pgmarina in transaction pooling (issue 5, reference.md 3):
// libpq's PQprepare from many clients over few servers, and a raw wire client that checks the
// exact reply stream where the proxy answers for the server (fake ParseComplete and
// CloseComplete, 42P05, pipelines with errors, Flush without Sync, Describe), and the retry of
// an execution refused for a stale plan after ALTER TABLE.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_query.hpp"
#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"
#include "wire/writer.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

// `app` (3 servers) and `sess` (session pooling) with the default max_prepared_statements;
// `one` (1 server) on the second pgmarina, whose servers keep 2 statements each and whose
// clients need no password, so that the raw client can log in.
std::string config_for(const PgCluster& cluster, std::uint16_t port, bool small) {
    const std::string hosts = "hosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
    std::string config = "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(port) +
                         "\"]\nunix_socket_dir = \"\"\npool_mode = \"transaction\"\n";
    if (small) {
        config += "auth_type = \"trust\"\nmax_prepared_statements = 2\n"
                  "[databases.one]\ndbname = \"app\"\npool_size = 1\n" +
                  hosts;
    } else {
        config += "[databases.app]\npool_size = 3\n" + hosts +
                  "[databases.sess]\ndbname = \"app\"\npool_mode = \"session\"\n" + hosts;
    }
    return config + "[users.scram_user]\npassword = \"" + cluster.password("scram_user") + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port, false), port};
    std::uint16_t small_port = PgmarinaProcess::free_port();
    PgmarinaProcess small{config_for(cluster, small_port, true), small_port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

pq::Connection connect(std::string_view dbname = "app") {
    auto& s = setup();
    auto conn = pq::Connection::connect(
        dbname == "one"
            ? s.small.conninfo("scram_user", "unused", dbname)
            : s.pgmarina.conninfo("scram_user", s.cluster.password("scram_user"), dbname));
    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
    return conn;
}

// PQexecPrepared with text parameters.
pq::Result exec_prepared(const pq::Connection& conn, const char* name,
                         const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const auto& p : params)
        values.push_back(p.c_str());
    return pq::Result(PQexecPrepared(conn.native(), name, static_cast<int>(values.size()),
                                     values.data(), nullptr, nullptr, 0));
}

pq::Result prepare(const pq::Connection& conn, const char* name, const char* sql) {
    return pq::Result(PQprepare(conn.native(), name, sql, 0, nullptr));
}

// A client that speaks the protocol byte by byte to the `one` database (trust auth).
class RawClient {
public:
    RawClient() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(setup().small_port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
        wire::fe::StartupMessage startup{{3, 0}, {{"user", "scram_user"}, {"database", "one"}}};
        startup.encode(writer_);
        REQUIRE(replies(1) == "R");
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    ~RawClient() { ::close(fd_); }

    RawClient& parse(std::string_view name, std::string_view sql) {
        wire::fe::Parse{name, sql, {}}.encode(writer_);
        return *this;
    }
    RawClient& bind(std::string_view statement, std::string_view portal = "") {
        wire::fe::Bind{portal, statement, {}, {}, {}}.encode(writer_);
        return *this;
    }
    RawClient& execute(std::string_view portal = "") {
        wire::fe::Execute{portal, 0}.encode(writer_);
        return *this;
    }
    RawClient& describe(wire::fe::Describe describe) {
        describe.encode(writer_);
        return *this;
    }
    RawClient& close(std::string_view name) {
        wire::fe::Close::statement(name).encode(writer_);
        return *this;
    }
    RawClient& flush() {
        wire::fe::Flush{}.encode(writer_);
        return *this;
    }
    RawClient& sync() {
        wire::fe::Sync{}.encode(writer_);
        return *this;
    }

    // Sends what was queued and returns the type bytes of the replies up to the `ready`-th
    // ReadyForQuery (or, with ready 0, whatever came within half a second), an ErrorResponse
    // written as E(SQLSTATE). Errors' messages are kept in errors().
    std::string replies(int ready) {
        const auto bytes = writer_.take();
        REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
        std::string types;
        pollfd readable{.fd = fd_, .events = POLLIN, .revents = 0};
        while (ready == 0 || std::ranges::count(types, 'Z') < ready) {
            for (auto frame = framer_.next(); frame && *frame; frame = framer_.next()) {
                types += (**frame).type;
                if ((**frame).type == 'E') {
                    const auto error = wire::be::ErrorResponse::parse(**frame);
                    types += "(" + std::string(error->code()) + ")";
                    errors_.emplace_back(error->message());
                }
            }
            if (ready != 0 && std::ranges::count(types, 'Z') >= ready) break;
            if (::poll(&readable, 1, ready == 0 ? 500 : 5000) != 1) break;
            const auto space = framer_.prepare(4096);
            const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
            if (n <= 0) break;
            framer_.commit(static_cast<std::size_t>(n));
        }
        // The login's replies: only the R, the rest is ParameterStatus noise.
        if (types.find('R') == 0) return "R";
        return types;
    }
    const std::vector<std::string>& errors() const { return errors_; }

private:
    int fd_ = -1;
    wire::Writer writer_;
    wire::Framer framer_{wire::Phase::typed};
    std::vector<std::string> errors_;
};

TEST_SUITE("integration.prepared") {
    TEST_CASE("20 clients over 3 servers prepare and execute named statements") {
        // Started from this thread: pgmarina gets SIGKILL when the thread that started it ends.
        (void)setup();
        std::atomic<int> failures{0};
        std::vector<std::thread> clients;
        for (int c = 0; c < 20; ++c) {
            clients.emplace_back([c, &failures] {
                auto conn = connect();
                const std::string own = "SELECT $1::int * " + std::to_string(c + 2);
                if (!prepare(conn, "common", "SELECT $1::int + 1").ok() ||
                    !prepare(conn, "own", own.c_str()).ok()) {
                    ++failures;
                    return;
                }
                for (int i = 0; i < 25; ++i) {
                    const auto plus = exec_prepared(conn, "common", {std::to_string(i)});
                    const auto times = exec_prepared(conn, "own", {std::to_string(i)});
                    if (!plus.ok() || plus.value(0, 0) != std::to_string(i + 1) || !times.ok() ||
                        times.value(0, 0) != std::to_string(i * (c + 2)))
                        ++failures;
                }
            });
        }
        for (auto& client : clients)
            client.join();
        CHECK(failures == 0);
        CHECK_MESSAGE(setup().pgmarina.running(), setup().pgmarina.log());
    }

    TEST_CASE("statements carry server names in transaction pooling, client names in session") {
        auto pooled = connect("one");
        REQUIRE(prepare(pooled, "mine", "SELECT 'pooled'").ok());
        auto names = pooled.exec("SELECT name FROM pg_prepared_statements");
        REQUIRE(names.ok());
        REQUIRE(names.ntuples() >= 1);
        CHECK(names.value(0, 0).starts_with("PGMARINA_"));

        auto session = connect("sess");
        REQUIRE(prepare(session, "mine", "SELECT 'session'").ok());
        names = session.exec("SELECT name FROM pg_prepared_statements");
        REQUIRE(names.ntuples() == 1);
        CHECK(names.value(0, 0) == "mine");
        CHECK(exec_prepared(session, "mine").value(0, 0) == "session");
    }

    TEST_CASE("a name prepared twice gets 42P05 and the batch is skipped to its Sync") {
        RawClient raw;
        CHECK(raw.parse("a", "SELECT 1").sync().replies(1) == "1Z");
        CHECK(raw.parse("a", "SELECT 2").bind("a").execute().sync().replies(1) == "E(42P05)Z");
        CHECK(raw.errors().back() == "prepared statement \"a\" already exists");
        // The first statement is still the one behind the name, and the name probe is gone.
        CHECK(raw.bind("a").execute().sync().replies(1) == "2DCZ");
        CHECK(raw.parse("a2", "SELECT 1").sync().replies(1) == "1Z");
        auto conn = connect("one");
        CHECK(
            conn.exec("SELECT count(*) FROM pg_prepared_statements WHERE name = 'a'").value(0, 0) ==
            "0");
    }

    TEST_CASE("Close(S) is answered by pgmarina and frees the client's name") {
        RawClient raw;
        CHECK(raw.parse("c", "SELECT 1").sync().replies(1) == "1Z");
        CHECK(raw.close("c").parse("c", "SELECT 2").bind("c").execute().sync().replies(1) ==
              "312DCZ");
        CHECK(raw.close("c").bind("c").execute().sync().replies(1) == "3E(26000)Z");
        // Closing a name never prepared is no error, as on PostgreSQL.
        CHECK(raw.close("never").sync().replies(1) == "3Z");
    }

    TEST_CASE("pipelines with an error in the middle") {
        RawClient raw;
        // The Parse after the error is skipped: its name stays free, the one before it works.
        CHECK(raw.parse("p1", "SELECT 1")
                  .parse("bad", "SELEKT")
                  .parse("p2", "SELECT 2")
                  .bind("p1")
                  .execute()
                  .sync()
                  .replies(1) == "1E(42601)Z");
        CHECK(raw.bind("p1").execute().sync().replies(1) == "2DCZ");
        CHECK(raw.bind("p2").execute().sync().replies(1) == "E(26000)Z");
        CHECK(raw.parse("p2", "SELECT 2").parse("bad", "SELECT 3").sync().replies(1) == "11Z");
        // An error at execution skips a Close: the statement stays prepared.
        CHECK(raw.parse("z", "SELECT 1 / (random() * 0)::int")
                  .bind("z")
                  .execute()
                  .close("p1")
                  .sync()
                  .replies(1) == "12E(22012)Z");
        CHECK(raw.bind("p1").execute().sync().replies(1) == "2DCZ");
        // Several batches in one write, the middle one failing.
        CHECK(raw.bind("p2")
                  .execute()
                  .sync()
                  .bind("z")
                  .execute()
                  .sync()
                  .bind("bad")
                  .execute()
                  .sync()
                  .replies(3) == "2DCZ2E(22012)Z2DCZ");
    }

    TEST_CASE("Flush without Sync, and Describe of statements and portals") {
        RawClient raw;
        CHECK(raw.parse("f", "SELECT $1::int AS x").flush().replies(0) == "1");
        CHECK(raw.describe(wire::fe::Describe::statement("f")).flush().replies(0) == "tT");
        CHECK(raw.sync().replies(1) == "Z");
        // Already prepared on the server: the ParseComplete is pgmarina's, in its place.
        RawClient other;
        CHECK(other.parse("g", "SELECT $1::int AS x").flush().replies(0) == "1");
        CHECK(other.sync().replies(1) == "Z");
        CHECK(raw.describe(wire::fe::Describe::statement("nope")).sync().replies(1) == "E(26000)Z");
    }

    TEST_CASE("max_prepared_statements = 2 closes the least recently used statements") {
        auto conn = connect("one");
        for (int s = 0; s < 5; ++s) {
            const std::string name = "r" + std::to_string(s);
            const std::string sql = "SELECT " + std::to_string(s) + " + $1::int";
            REQUIRE(prepare(conn, name.c_str(), sql.c_str()).ok());
        }
        for (int round = 0; round < 20; ++round) {
            const int s = round % 5;
            const auto result =
                exec_prepared(conn, ("r" + std::to_string(s)).c_str(), {std::to_string(round)});
            REQUIRE_MESSAGE(result.ok(), result.error_message());
            CHECK(result.value(0, 0) == std::to_string(s + round));
        }
        const auto count =
            conn.exec("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'PGMARINA_%'");
        CHECK(std::stoi(count.value(0, 0)) <= 2);
    }

    TEST_CASE("DEALLOCATE ALL and DISCARD ALL clear the client's names and the server's cache") {
        auto first = connect("one");
        auto second = connect("one");
        REQUIRE(prepare(first, "x", "SELECT 'x'").ok());
        REQUIRE(prepare(second, "y", "SELECT 'y'").ok());
        for (const char* command : {"DEALLOCATE ALL", "DISCARD ALL"}) {
            CAPTURE(command);
            REQUIRE(second.exec(command).ok());
            CHECK(exec_prepared(second, "y").sqlstate() == "26000");
            CHECK(prepare(second, "y", "SELECT 'y'").ok());
            // The other client's statement is prepared again on the one server.
            const auto x = exec_prepared(first, "x");
            REQUIRE_MESSAGE(x.ok(), x.error_message());
            CHECK(x.value(0, 0) == "x");
        }
    }

    TEST_CASE("clients running a prepared SELECT * see ALTER TABLE ADD COLUMN, no error") {
        auto admin = connect();
        REQUIRE(admin
                    .exec("CREATE TABLE ddl (id int PRIMARY KEY);"
                          "INSERT INTO ddl SELECT generate_series(1, 10)")
                    .ok());
        constexpr int alters = 3;
        // Columns of ddl once the last ALTER that returned has committed.
        std::atomic<int> columns{1};
        std::atomic<bool> done{false};
        std::atomic<int> executions{0};
        std::atomic<int> failures{0};
        std::mutex first_failure_lock;
        std::string first_failure;
        std::vector<std::thread> clients;
        for (int c = 0; c < 6; ++c) {
            clients.emplace_back([&, c] {
                const auto fail = [&](const std::string& what) {
                    if (failures++ == 0) {
                        const std::lock_guard lock(first_failure_lock);
                        first_failure = what;
                    }
                };
                auto conn = connect();
                if (!prepare(conn, "star", "SELECT * FROM ddl WHERE id = $1").ok()) {
                    fail("PQprepare failed");
                    return;
                }
                // Every execution is an implicit transaction of its own: Bind, Describe of the
                // portal, Execute, Sync.
                const auto run = [&](int i) {
                    const int at_least = columns;
                    const auto result = exec_prepared(conn, "star", {std::to_string(1 + i % 10)});
                    ++executions;
                    if (!result.ok()) {
                        fail(result.sqlstate() + " " + result.error_message());
                    } else if (result.ntuples() != 1 || result.nfields() < at_least) {
                        fail(std::to_string(result.nfields()) + " columns, " +
                             std::to_string(at_least) + " expected");
                    }
                };
                for (int i = c; !done; ++i)
                    run(i);
                const int before = failures;
                run(c);
                if (failures == before) {
                    const auto last = exec_prepared(conn, "star", {"1"});
                    if (!last.ok() || last.nfields() != 1 + alters) fail("last execution");
                }
            });
        }
        std::this_thread::sleep_for(300ms);
        for (int a = 1; a <= alters; ++a) {
            const std::string alter = "ALTER TABLE ddl ADD COLUMN c" + std::to_string(a) +
                                      " int DEFAULT " + std::to_string(a);
            REQUIRE(admin.exec(alter).ok());
            columns = 1 + a;
            std::this_thread::sleep_for(200ms);
        }
        done = true;
        for (auto& client : clients)
            client.join();
        CHECK_MESSAGE(failures == 0, first_failure);
        CHECK(executions > 100);
        CHECK_MESSAGE(setup().pgmarina.running(), setup().pgmarina.log());
    }

    TEST_CASE("a stale plan is retried unseen: the replies come once, as the first time") {
        auto admin = connect();
        REQUIRE(admin.exec("CREATE TABLE ddl_raw (a int); INSERT INTO ddl_raw VALUES (1)").ok());
        RawClient raw;
        const auto execute = [&raw]() -> RawClient& {
            return raw.bind("r").describe(wire::fe::Describe::portal("")).execute().sync();
        };
        CHECK(raw.parse("r", "SELECT * FROM ddl_raw").sync().replies(1) == "1Z");
        CHECK(execute().replies(1) == "2TDCZ");
        REQUIRE(admin.exec("ALTER TABLE ddl_raw ADD COLUMN b int").ok());
        CHECK(execute().replies(1) == "2TDCZ");
        CHECK(execute().replies(1) == "2TDCZ");
        // Two executions in one write: the first is followed by another request, so it is not
        // kept and its error reaches the client; the second is retried.
        REQUIRE(admin.exec("ALTER TABLE ddl_raw ADD COLUMN c int").ok());
        CHECK(raw.bind("r").execute().sync().bind("r").execute().sync().replies(2) ==
              "E(0A000)Z2DCZ");
        CHECK(raw.errors().back() == "cached plan must not change result type");
        // With a Parse in the same batch the request is not retried either.
        REQUIRE(admin.exec("ALTER TABLE ddl_raw ADD COLUMN d int").ok());
        CHECK(raw.parse("other", "SELECT 1").bind("r").execute().sync().replies(1) == "1E(0A000)Z");
        CHECK(execute().replies(1) == "2TDCZ");
    }

    TEST_CASE("inside a transaction block the stale plan error reaches the client") {
        auto admin = connect();
        REQUIRE(admin.exec("CREATE TABLE ddl_tx (a int); INSERT INTO ddl_tx VALUES (1)").ok());
        // `one` has a single server: the statement is prepared on the server the BEGIN gets.
        auto conn = connect("one");
        REQUIRE(prepare(conn, "tx", "SELECT * FROM ddl_tx").ok());
        REQUIRE(exec_prepared(conn, "tx").nfields() == 1);
        REQUIRE(admin.exec("ALTER TABLE ddl_tx ADD COLUMN b int").ok());
        REQUIRE(conn.exec("BEGIN").ok());
        const auto in_block = exec_prepared(conn, "tx");
        CHECK(in_block.sqlstate() == "0A000");
        CHECK(PQtransactionStatus(conn.native()) == PQTRANS_INERROR);
        REQUIRE(conn.exec("ROLLBACK").ok());
        // Closed and prepared afresh: the next implicit transaction sees the new column.
        const auto after = exec_prepared(conn, "tx");
        REQUIRE_MESSAGE(after.ok(), after.error_message());
        CHECK(after.nfields() == 2);
        // And a stale plan met outside a block again is retried.
        REQUIRE(admin.exec("ALTER TABLE ddl_tx ADD COLUMN c int").ok());
        const auto implicit = exec_prepared(conn, "tx");
        REQUIRE_MESSAGE(implicit.ok(), implicit.error_message());
        CHECK(implicit.nfields() == 3);
    }
}

} // namespace

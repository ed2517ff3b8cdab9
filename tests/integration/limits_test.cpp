// pgmarina's limits and timeouts, its client authentication and its startup-packet rules, against
// a real PostgreSQL 15 and real clients. Each case starts its own pgmarina with the settings it
// tests; what PostgreSQL sees is read from pg_stat_activity on a direct superuser connection.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
namespace raw = support::raw;

struct Setup {
    PgCluster cluster{{.replicas = 0}};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string user_section(const std::string& user) {
    return "[users." + user + "]\npassword = \"" + setup().cluster.password(user) + "\"\n";
}

std::string users_sections() {
    return user_section("scram_user") + user_section("md5_user") + user_section("plain_user");
}

// A pgmarina in front of the primary: `app` and its alias `alias`, `settings` added to
// [pgmarina], `sections` (more databases, users) at the end. With_users puts the cluster's three
// users and their passwords into [users].
class Proxy {
public:
    explicit Proxy(const std::string& settings, const std::string& sections = "",
                   bool with_users = true)
        : port_(PgmarinaProcess::free_port()),
          process_(config(settings, sections + (with_users ? users_sections() : "")), port_) {}

    PgmarinaProcess& process() { return process_; }
    std::uint16_t port() const { return port_; }

    std::string conninfo(const std::string& user, const std::string& dbname = "app") const {
        return process_.conninfo(user, setup().cluster.password(user), dbname);
    }
    // With verbose errors: when pgmarina ends a session with a FATAL, libpq returns a later
    // "server closed the connection" as the query's result and keeps the FATAL only in the
    // connection's message, where Connection::sqlstate() finds its code in verbose form.
    pq::Connection connect(const std::string& user = "scram_user",
                           const std::string& dbname = "app") const {
        auto conn = pq::Connection::connect(conninfo(user, dbname));
        if (conn.ok()) PQsetErrorVerbosity(conn.native(), PQERRORS_VERBOSE);
        return conn;
    }

private:
    std::string config(const std::string& settings, const std::string& sections) const {
        const std::string primary =
            "[\"127.0.0.1:" + std::to_string(setup().cluster.port(0)) + "\"]\n";
        return "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(port_) +
               "\"]\nunix_socket_dir = \"\"\nserver_connect_timeout = 2\n" + settings +
               "[databases.app]\nhosts = " + primary +
               "[databases.alias]\ndbname = \"app\"\nhosts = " + primary + sections;
    }

    std::uint16_t port_;
    PgmarinaProcess process_;
};

pq::Connection superuser() {
    auto conn = pq::Connection::connect(setup().cluster.conninfo(0, "postgres", "app"));
    if (!conn.ok()) throw std::runtime_error("superuser connection: " + conn.error_message());
    return conn;
}

// Client backends of database app whose user matches `users` (an SQL IN list).
int backends(pq::Connection& admin, const std::string& users) {
    const auto result = admin.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' "
                                   "AND backend_type = 'client backend' AND usename IN (" +
                                   users + ")");
    if (!result.ok()) throw std::runtime_error("pg_stat_activity: " + result.error_message());
    return std::stoi(result.value(0, 0));
}

// Polls until `users` have `expected` backends; returns the last count seen.
int wait_for_backends(const std::string& users, int expected, Clock::duration timeout = 5s) {
    auto admin = superuser();
    const auto deadline = Clock::now() + timeout;
    int count = backends(admin, users);
    while (count != expected && Clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
        count = backends(admin, users);
    }
    return count;
}

// Waits until the connection's socket is readable, which for an idle client means pgmarina
// sent something unasked (its FATAL before closing); returns how long that took, or nullopt.
std::optional<Clock::duration> readable_after(const pq::Connection& conn, Clock::duration timeout) {
    const auto started = Clock::now();
    pollfd entry{.fd = PQsocket(conn.native()), .events = POLLIN, .revents = 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
    if (::poll(&entry, 1, static_cast<int>(ms)) != 1) return std::nullopt;
    return Clock::now() - started;
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

// A client that runs short transactions until `until`, for the caps tests.
struct Worker {
    explicit Worker(std::string info) : conninfo(std::move(info)) {}

    std::string conninfo;
    int done = 0;
    std::string error;

    void operator()(Clock::time_point until) {
        auto conn = pq::Connection::connect(conninfo);
        if (!conn.ok()) {
            error = conn.error_message();
            return;
        }
        while (Clock::now() < until) {
            const auto result = conn.exec("SELECT pg_sleep(0.02)");
            if (!result.ok()) {
                error = result.error_message();
                return;
            }
            ++done;
            // Idle between transactions, as most clients are: the server is back in its pool
            // most of the time, free to be evicted for the other pool.
            std::this_thread::sleep_for(80ms);
        }
    }
};

// Runs two workers for 2 s while sampling pg_stat_activity every 50 ms; returns the largest
// backend count seen for `users`.
int busiest_while_working(Worker& first, Worker& second, const std::string& users) {
    std::atomic<bool> stop{false};
    int most = 0;
    std::string sampler_error;
    std::thread sampler([&] {
        try {
            auto admin = superuser();
            while (!stop) {
                most = std::max(most, backends(admin, users));
                std::this_thread::sleep_for(50ms);
            }
        } catch (const std::exception& e) {
            sampler_error = e.what();
        }
    });
    const auto until = Clock::now() + 2s;
    std::thread a([&] { first(until); });
    std::thread b([&] { second(until); });
    a.join();
    b.join();
    stop = true;
    sampler.join();
    CHECK_MESSAGE(sampler_error.empty(), sampler_error);
    return most;
}

// The secret PostgreSQL stores for a user: an md5 hash or a SCRAM-SHA-256 verifier, what an
// auth_file holds when the plain password is not to be written down.
std::string stored_secret(const std::string& user) {
    auto admin = superuser();
    const auto result =
        admin.exec("SELECT rolpassword FROM pg_authid WHERE rolname = '" + user + "'");
    if (!result.ok()) throw std::runtime_error("pg_authid: " + result.error_message());
    return result.value(0, 0);
}

// One login of the auth matrix: "" expects success, anything else that SQLSTATE.
struct Login {
    std::string user;
    std::string password;
    std::string sqlstate;
};

struct AuthCase {
    std::string auth_type;
    std::string auth_file; // its lines; "" for none
    std::string users;     // [users.*] sections
    std::vector<Login> logins;
};

std::string auth_line(const std::string& user, const std::string& secret) {
    return "\"" + user + "\" \"" + secret + "\"\n";
}

// pgmarina's soft RLIMIT_NOFILE, from /proc/PID/limits.
long descriptor_limit(pid_t pid) {
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(limits, line)) {
        if (line.starts_with("Max open files")) return std::stol(line.substr(26));
    }
    throw std::runtime_error("no open files limit for " + std::to_string(pid));
}

// Sets pgmarina's soft RLIMIT_NOFILE with util-linux prlimit (the hard one stays, so that no
// privilege is needed to raise it again).
void limit_descriptors(pid_t pid, long limit) {
    const std::string command =
        "prlimit --pid " + std::to_string(pid) + " --nofile=" + std::to_string(limit) + ":";
    const int status = std::system(command.c_str());
    REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), command);
    REQUIRE(descriptor_limit(pid) == limit);
}

} // namespace

TEST_SUITE("integration.limits") {

    TEST_CASE("max_client_conn: the client over the limit gets 53300 until another one leaves") {
        Proxy proxy{"max_client_conn = 3\n"};
        std::vector<pq::Connection> clients;
        for (int i = 0; i < 3; ++i) {
            clients.push_back(proxy.connect());
            REQUIRE_MESSAGE(clients.back().ok(), clients.back().error_message());
            CHECK(clients.back().exec("SELECT 1").value(0, 0) == "1");
        }
        auto fourth = proxy.connect();
        CHECK_FALSE(fourth.ok());
        CHECK(fourth.sqlstate() == "53300");
        CHECK(contains(fourth.error_message(), "max_client_conn"));

        clients.pop_back();
        // pgmarina frees the slot once it has read the leaving client's Terminate, a moment
        // after PQfinish returns: retry for a bounded time.
        auto next = proxy.connect();
        for (auto deadline = Clock::now() + 2s; !next.ok() && Clock::now() < deadline;) {
            CHECK(next.sqlstate() == "53300");
            std::this_thread::sleep_for(20ms);
            next = proxy.connect();
        }
        REQUIRE_MESSAGE(next.ok(), next.error_message());
        CHECK(next.exec("SELECT 1").value(0, 0) == "1");
    }

    TEST_CASE("query_wait_timeout: a client waiting for a busy pool gives up after ~1 s") {
        Proxy proxy{"default_pool_size = 1\nquery_wait_timeout = 1\n"};
        auto holder = proxy.connect();
        REQUIRE_MESSAGE(holder.ok(), holder.error_message());
        REQUIRE(holder.exec("BEGIN").ok());
        REQUIRE(holder.exec("SELECT 1").ok());

        auto waiter = proxy.connect();
        REQUIRE_MESSAGE(waiter.ok(), waiter.error_message());
        const auto started = Clock::now();
        const auto result = waiter.exec("SELECT 1", 5s);
        const auto waited = Clock::now() - started;
        CHECK_FALSE(result.ok());
        CHECK(waiter.sqlstate() == "08P01");
        CHECK_MESSAGE(contains(waiter.error_message(), "FATAL:  08P01: query_wait_timeout"),
                      waiter.error_message());
        CHECK(waited >= 900ms);
        CHECK(waited < 2500ms); // the janitor runs every 333 ms
        CHECK(PQstatus(waiter.native()) == CONNECTION_BAD);

        CHECK(holder.exec("SELECT 2").value(0, 0) == "2");
        CHECK(holder.exec("COMMIT").ok());
        CHECK(PQtransactionStatus(holder.native()) == PQTRANS_IDLE);
    }

    TEST_CASE("reserve_pool_size: a client waiting reserve_pool_timeout gets a reserve server") {
        REQUIRE(wait_for_backends("'scram_user'", 0) == 0);
        Proxy proxy{"default_pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout = 0.5\n"};
        auto holder = proxy.connect();
        REQUIRE_MESSAGE(holder.ok(), holder.error_message());
        REQUIRE(holder.exec("BEGIN").ok());
        REQUIRE(holder.exec("SELECT 1").ok());

        auto waiter = proxy.connect();
        REQUIRE_MESSAGE(waiter.ok(), waiter.error_message());
        const auto started = Clock::now();
        const auto result = waiter.exec("SELECT 1");
        const auto waited = Clock::now() - started;
        CHECK_MESSAGE(result.ok(), result.error_message());
        CHECK(waited >= 400ms);
        CHECK(waited < 3s);
        auto admin = superuser();
        CHECK(backends(admin, "'scram_user'") == 2);
        CHECK(contains(proxy.process().log(), "taking connection from reserve_pool"));
        CHECK(holder.exec("COMMIT").ok());
    }

    TEST_CASE("max_db_connections caps the servers of two users' pools of one database") {
        REQUIRE(wait_for_backends("'scram_user', 'md5_user'", 0) == 0);
        Proxy proxy{"max_db_connections = 1\nquery_wait_timeout = 3\nclient_login_timeout = 3\n"};
        Worker scram{proxy.conninfo("scram_user")};
        Worker md5{proxy.conninfo("md5_user")};
        const int most = busiest_while_working(scram, md5, "'scram_user', 'md5_user'");
        CHECK(most == 1);
        CHECK_MESSAGE(scram.error.empty(), scram.error);
        CHECK_MESSAGE(md5.error.empty(), md5.error);
        CHECK(scram.done >= 5);
        CHECK(md5.done >= 5);
    }

    TEST_CASE("max_user_connections caps the servers of one user's pools of two databases") {
        REQUIRE(wait_for_backends("'scram_user'", 0) == 0);
        Proxy proxy{"max_user_connections = 1\nquery_wait_timeout = 3\nclient_login_timeout = 3\n"};
        Worker direct{proxy.conninfo("scram_user", "app")};
        Worker aliased{proxy.conninfo("scram_user", "alias")};
        const int most = busiest_while_working(direct, aliased, "'scram_user'");
        CHECK(most == 1);
        CHECK_MESSAGE(direct.error.empty(), direct.error);
        CHECK_MESSAGE(aliased.error.empty(), aliased.error);
        CHECK(direct.done >= 5);
        CHECK(aliased.done >= 5);
    }

    TEST_CASE("query_timeout: a query running past it fails with 57014 and ends the session") {
        Proxy proxy{"query_timeout = 1\n"};
        auto conn = proxy.connect();
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        const auto started = Clock::now();
        const auto result = conn.exec("SELECT pg_sleep(5)", 5s);
        const auto took = Clock::now() - started;
        CHECK_FALSE(result.ok());
        CHECK(conn.sqlstate() == "57014");
        CHECK_MESSAGE(contains(conn.error_message(), "query_timeout"), conn.error_message());
        CHECK(took >= 900ms);
        CHECK(took < 2s);
        CHECK(PQstatus(conn.native()) == CONNECTION_BAD);
        // The server still sleeping is not lent to the next client.
        auto next = proxy.connect();
        const auto quick = Clock::now();
        CHECK(next.exec("SELECT 1").value(0, 0) == "1");
        CHECK(Clock::now() - quick < 1s);
    }

    TEST_CASE("idle_transaction_timeout: a client idle inside a transaction is closed") {
        Proxy proxy{"idle_transaction_timeout = 1\n"};
        auto idle = proxy.connect(); // outside a transaction: not affected
        REQUIRE_MESSAGE(idle.ok(), idle.error_message());
        auto conn = proxy.connect();
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        REQUIRE(conn.exec("BEGIN").ok());
        const auto after = readable_after(conn, 3s);
        REQUIRE(after.has_value());
        CHECK(*after >= 900ms);
        CHECK(*after < 2s);
        const auto result = conn.exec("SELECT 1");
        CHECK_FALSE(result.ok());
        CHECK(conn.sqlstate() == "25P03");
        CHECK_MESSAGE(contains(conn.error_message(), "idle transaction timeout"),
                      conn.error_message());
        CHECK(PQstatus(conn.native()) == CONNECTION_BAD);
        CHECK(idle.exec("SELECT 1").value(0, 0) == "1");
    }

    TEST_CASE("client_idle_timeout: an idle client is closed after it, not before") {
        Proxy proxy{"client_idle_timeout = 1\n"};
        auto conn = proxy.connect();
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        std::this_thread::sleep_for(600ms);
        REQUIRE(conn.exec("SELECT 1").ok()); // activity restarts the clock
        const auto after = readable_after(conn, 3s);
        REQUIRE(after.has_value());
        CHECK(*after >= 900ms);
        CHECK(*after < 2s);
        const auto result = conn.exec("SELECT 1");
        CHECK_FALSE(result.ok());
        CHECK(conn.sqlstate() == "08P01");
        CHECK_MESSAGE(contains(conn.error_message(), "client_idle_timeout"), conn.error_message());
    }

    TEST_CASE("server_idle_timeout closes a server idle past it; the client gets a new one") {
        REQUIRE(wait_for_backends("'scram_user'", 0) == 0);
        Proxy proxy{"server_idle_timeout = 1\n"};
        auto conn = proxy.connect();
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        const auto first = conn.exec("SELECT pg_backend_pid()").value(0, 0);
        auto admin = superuser();
        CHECK(backends(admin, "'scram_user'") == 1);
        const auto started = Clock::now();
        CHECK(wait_for_backends("'scram_user'", 0, 4s) == 0);
        CHECK(Clock::now() - started >= 700ms);
        const auto second = conn.exec("SELECT pg_backend_pid()");
        REQUIRE(second.ok());
        CHECK(second.value(0, 0) != first);
    }

    TEST_CASE("server_lifetime replaces servers older than it, even busy ones between uses") {
        REQUIRE(wait_for_backends("'scram_user'", 0) == 0);
        Proxy proxy{"server_lifetime = 1\nserver_idle_timeout = 0\n"};
        auto conn = proxy.connect();
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        std::set<std::string> pids;
        for (auto until = Clock::now() + 2500ms; Clock::now() < until;) {
            const auto result = conn.exec("SELECT pg_backend_pid()");
            REQUIRE(result.ok());
            pids.insert(result.value(0, 0));
            std::this_thread::sleep_for(100ms);
        }
        CHECK(pids.size() >= 2);
        CHECK(pids.size() <= 4);
        CHECK(wait_for_backends("'scram_user'", 0, 3s) == 0);
    }

    TEST_CASE("min_pool_size keeps two servers open once the pool exists, with no clients") {
        REQUIRE(wait_for_backends("'scram_user'", 0) == 0);
        Proxy proxy{"min_pool_size = 2\n"};
        {
            // Pools are made by their first client (as in PgBouncer).
            auto conn = proxy.connect();
            REQUIRE_MESSAGE(conn.ok(), conn.error_message());
            REQUIRE(conn.exec("SELECT 1").ok());
        }
        CHECK(wait_for_backends("'scram_user'", 2, 3s) == 2);
        std::this_thread::sleep_for(1s);
        auto admin = superuser();
        CHECK(backends(admin, "'scram_user'") == 2);
    }

    TEST_CASE("client authentication: each auth_type with [users] and auth_file secrets") {
        const std::string scram = stored_secret("scram_user");
        const std::string md5 = stored_secret("md5_user");
        REQUIRE(scram.starts_with("SCRAM-SHA-256$"));
        REQUIRE(md5.starts_with("md5"));
        const std::string plain = setup().cluster.password("plain_user");
        const std::string scram_pw = setup().cluster.password("scram_user");
        const std::string md5_pw = setup().cluster.password("md5_user");
        const std::vector<AuthCase> cases{
            {"trust",
             "",
             user_section("scram_user"),
             {{"scram_user", scram_pw, ""},
              {"scram_user", "anything", ""},
              {"nosuchuser", "x", "28000"}}},
            {"plain",
             auth_line("plain_user", plain) + auth_line("md5_user", md5),
             user_section("scram_user"),
             {{"plain_user", plain, ""},
              {"scram_user", scram_pw, ""},
              {"md5_user", md5_pw, ""},
              {"plain_user", "wrong", "28P01"},
              {"nosuchuser", "x", "28P01"}}},
            {"md5",
             auth_line("md5_user", md5) + auth_line("scram_user", scram),
             user_section("plain_user"),
             {{"md5_user", md5_pw, ""},
              {"scram_user", scram_pw, ""}, // a SCRAM secret switches md5 to SCRAM
              {"plain_user", plain, ""},
              {"md5_user", "wrong", "28P01"},
              {"scram_user", "wrong", "28P01"},
              {"nosuchuser", "x", "28P01"}}},
            {"scram-sha-256",
             auth_line("scram_user", scram) + auth_line("md5_user", md5),
             user_section("plain_user"),
             {{"scram_user", scram_pw, ""},
              {"plain_user", plain, ""},
              {"scram_user", "wrong", "28P01"},
              {"md5_user", md5_pw, "28000"}, // an md5 hash cannot check a SCRAM proof
              {"nosuchuser", "x", "28P01"}}},
        };
        const auto dir =
            support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-authfile.");
        for (const AuthCase& auth : cases) {
            CAPTURE(auth.auth_type);
            std::string settings = "auth_type = \"" + auth.auth_type + "\"\n";
            if (!auth.auth_file.empty()) {
                const auto file = dir / (auth.auth_type + ".txt");
                std::ofstream(file) << auth.auth_file;
                settings += "auth_file = \"" + file.string() + "\"\n";
            }
            Proxy proxy{settings, auth.users, false};
            for (const Login& login : auth.logins) {
                CAPTURE(login.user);
                CAPTURE(login.password);
                auto conn = pq::Connection::connect(
                    proxy.process().conninfo(login.user, login.password, "app"));
                if (login.sqlstate.empty()) {
                    REQUIRE_MESSAGE(conn.ok(), conn.error_message());
                    const auto result = conn.exec("SELECT current_user");
                    CHECK_MESSAGE(result.ok(), result.error_message());
                    CHECK(result.value(0, 0) == login.user);
                } else {
                    CHECK_FALSE(conn.ok());
                    CHECK_MESSAGE(conn.sqlstate() == login.sqlstate, conn.error_message());
                }
            }
        }
        std::filesystem::remove_all(dir);
    }

    TEST_CASE("ignore_startup_parameters: an unknown startup parameter is refused unless listed") {
        const raw::Parameters startup{
            {"user", "scram_user"}, {"database", "app"}, {"extra_float_digits", "2"}};
        Proxy strict{""};
        raw::Client refused{strict.port()};
        refused.send(raw::startup_message(startup));
        const auto replies = refused.read_until_closed();
        CHECK(refused.closed());
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].type == 'E');
        CHECK(replies[0].field('C') == "08P01");
        CHECK(replies[0].field('M') == "unsupported startup parameter: extra_float_digits");

        Proxy lenient{"ignore_startup_parameters = [\"extra_float_digits\"]\n"};
        raw::Client accepted{lenient.port()};
        accepted.send(raw::startup_message(startup));
        const auto reply = accepted.read();
        REQUIRE(reply.has_value());
        CHECK(reply->type == 'R'); // on to authentication
    }

    TEST_CASE("protocol 3.1 with a _pq_ option gets one NegotiateProtocolVersion, then auth") {
        Proxy proxy{""};
        raw::Client client{proxy.port()};
        client.send(raw::startup_message(
            {{"user", "scram_user"}, {"database", "app"}, {"_pq_.test_option", "on"}}, 196609));
        const auto negotiate = client.read();
        REQUIRE(negotiate.has_value());
        CHECK(negotiate->type == 'v');
        // Newest minor version 0, one unrecognized option, its name.
        CHECK(negotiate->body ==
              raw::int32(0) + raw::int32(1) + std::string("_pq_.test_option") + '\0');
        const auto next = client.read();
        REQUIRE(next.has_value());
        CHECK(next->type == 'R');
        CHECK(next->body.substr(0, 4) == raw::int32(5)); // AuthenticationMD5Password: auth_type md5
    }

    TEST_CASE("out of file descriptors: new clients get 53300 at once, existing ones go on") {
        Proxy proxy{"default_pool_size = 3\n"};
        const pid_t pid = proxy.process().pid();
        // Three clients, each with a server of its own once, so that the pool holds three
        // servers and the existing clients need no new descriptor afterwards.
        std::vector<pq::Connection> existing;
        for (int i = 0; i < 3; ++i) {
            existing.push_back(proxy.connect());
            REQUIRE_MESSAGE(existing.back().ok(), existing.back().error_message());
            REQUIRE(existing.back().exec("BEGIN").ok());
        }
        for (auto& conn : existing)
            REQUIRE(conn.exec("COMMIT").ok());
        const long original = descriptor_limit(pid);
        const long in_use = support::open_files(pid);
        limit_descriptors(pid, in_use + 2);

        // Two more clients fit (three if a descriptor was on its way out when they were
        // counted, or if the other worker's acceptor takes the descriptor a refusal frees for a
        // moment, see listener.cpp); the others are refused with PostgreSQL's "too many
        // connections", in well under libpq's connect_timeout.
        std::vector<pq::Connection> extra;
        int refused = 0;
        for (int i = 0; i < 8; ++i) {
            CAPTURE(i);
            const auto started = Clock::now();
            auto conn = proxy.connect();
            const auto took = Clock::now() - started;
            CHECK(took < 2s);
            if (conn.ok()) {
                extra.push_back(std::move(conn));
                continue;
            }
            ++refused;
            CHECK_MESSAGE(conn.sqlstate() == "53300", conn.error_message());
            CHECK_MESSAGE(contains(conn.error_message(), "out of file descriptors"),
                          conn.error_message());
        }
        CHECK(refused >= 5);
        CHECK(extra.size() <= 3);
        for (auto& conn : existing) {
            const auto result = conn.exec("SELECT 1");
            CHECK_MESSAGE(result.ok(), result.error_message());
        }
        CHECK(proxy.process().running());

        // Descriptors again: clients come in again.
        extra.clear();
        limit_descriptors(pid, original);
        auto after = proxy.connect();
        REQUIRE_MESSAGE(after.ok(), after.error_message());
        CHECK(after.exec("SELECT 2").value(0, 0) == "2");
        CHECK(contains(proxy.process().log(), "refused a client (53300)"));
    }

    TEST_CASE("a client that stops reading a 2 GB result: bounded memory, others go on") {
        Proxy proxy{""};
        const pid_t pid = proxy.process().pid();
        auto other = proxy.connect();
        REQUIRE_MESSAGE(other.ok(), other.error_message());
        REQUIRE(other.exec("SELECT 1").ok());
        const long before = support::proc_status_kb(pid, "VmRSS");

        std::optional<pq::Connection> slow = proxy.connect();
        REQUIRE_MESSAGE(slow->ok(), slow->error_message());
        // 2 million rows of 1000 bytes, asked for and never read.
        REQUIRE(PQsendQuery(slow->native(),
                            "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)") == 1);
        long most = before;
        for (auto until = Clock::now() + 4s; Clock::now() < until;) {
            most = std::max(most, support::proc_status_kb(pid, "VmRSS"));
            std::this_thread::sleep_for(100ms);
        }
        MESSAGE("pgmarina VmRSS: " << before << " kB before, at most " << most
                                   << " kB while the client did not read");
        CHECK(most - before < 64 * 1024);
        // The result is on its way all this time: the other client gets its own server.
        const auto result = other.exec("SELECT 2", 3s);
        CHECK_MESSAGE(result.ok(), result.error_message());

        // The slow client leaves: its server is closed, not lent with 2 GB still owed.
        slow.reset();
        const auto running = [] {
            auto admin = superuser();
            return admin
                .exec("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                      "'SELECT repeat(''x'', 1000)%'")
                .value(0, 0);
        };
        for (auto until = Clock::now() + 5s; running() != "0" && Clock::now() < until;)
            std::this_thread::sleep_for(100ms);
        CHECK(running() == "0");
        CHECK(other.exec("SELECT 3", 3s).value(0, 0) == "3");
        CHECK(proxy.process().running());
    }
}

// pgmarina under load: pgbench in simple and extended mode, 500 clients sharing a pool of 5
// servers, and results and queries far larger than any buffer pgmarina should hold. The
// numbers measured (tps, peak RSS) are printed with MESSAGE so that they show in the test log.

#include "tests/support/command.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <poll.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;

constexpr int pool_size = 5;

std::string config_for(const PgCluster& cluster, std::uint16_t listen_port) {
    return "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(listen_port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "default_pool_size = " +
           std::to_string(pool_size) +
           "\n"
           "reserve_pool_size = 0\n"
           "max_client_conn = 600\n"
           "client_login_timeout = 5\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\nhosts = [\"127.0.0.1:" +
           std::to_string(cluster.port(0)) + "\"]\n[users.scram_user]\npassword = \"" +
           cluster.password("scram_user") + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string conninfo(const PgmarinaProcess& pgmarina) {
    return pgmarina.conninfo("scram_user", setup().cluster.password("scram_user"), "app");
}

std::string pgbench(const std::string& args, int port) {
    return "PGPASSWORD=" + setup().cluster.password("scram_user") + " pgbench -h 127.0.0.1 -p " +
           std::to_string(port) + " -U scram_user " + args + " app";
}

std::string match(const std::string& text, const std::string& pattern) {
    std::smatch found;
    return std::regex_search(text, found, std::regex(pattern)) ? found[1].str() : "";
}

// The next result of a query in flight, waiting at most until deadline; nullptr once the query
// is done. Throws on timeout.
PGresult* next_result(PGconn* conn, Clock::time_point deadline) {
    while (PQisBusy(conn) != 0) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd entry{.fd = PQsocket(conn), .events = POLLIN, .revents = 0};
        if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) {
            throw std::runtime_error("query timed out");
        }
        if (PQconsumeInput(conn) == 0) break;
    }
    return PQgetResult(conn);
}

// Sends a query without blocking past deadline: a proxy that stops reading a long query would
// otherwise hang PQsendQuery, which in blocking mode writes all of it first. Throws on timeout.
void send_query(PGconn* conn, const std::string& sql, Clock::time_point deadline) {
    PQsetnonblocking(conn, 1);
    if (PQsendQuery(conn, sql.c_str()) == 0) throw std::runtime_error(PQerrorMessage(conn));
    for (;;) {
        const int flushed = PQflush(conn);
        if (flushed == 0) break;
        if (flushed < 0) throw std::runtime_error(PQerrorMessage(conn));
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd entry{.fd = PQsocket(conn), .events = POLLIN | POLLOUT, .revents = 0};
        if (left.count() <= 0 || ::poll(&entry, 1, static_cast<int>(left.count())) <= 0) {
            throw std::runtime_error("sending the query timed out");
        }
        if ((entry.revents & POLLIN) != 0 && PQconsumeInput(conn) == 0) {
            throw std::runtime_error(PQerrorMessage(conn));
        }
    }
    PQsetnonblocking(conn, 0);
}

// Collects the results of a query sent with PQsendQuery; "" if it succeeded, else why not.
std::string finish_query(PGconn* conn, Clock::time_point deadline) {
    std::string error;
    while (PGresult* result = next_result(conn, deadline)) {
        if (PQresultStatus(result) != PGRES_TUPLES_OK && error.empty()) {
            error = PQresultErrorMessage(result);
        }
        PQclear(result);
    }
    return error;
}

} // namespace

TEST_SUITE("integration.load") {

    TEST_CASE("pgbench through pgmarina, simple and extended protocol: no failed transaction") {
        const auto init = support::run_command(pgbench("-i -s 1 -q", setup().cluster.port(0)));
        REQUIRE_MESSAGE(init.status == 0, init.output);
        for (const std::string mode : {"simple", "extended"}) {
            CAPTURE(mode);
            const auto bench = support::run_command(
                pgbench(std::string("-c 50 -j 2 -T 5 -M ") + mode, setup().port));
            CHECK_MESSAGE(bench.status == 0, bench.output);
            CHECK_MESSAGE(match(bench.output, "number of failed transactions: ([0-9]+)") == "0",
                          bench.output);
            const std::string processed =
                match(bench.output, "number of transactions actually processed: ([0-9]+)");
            CHECK_MESSAGE(!processed.empty(), bench.output);
            CHECK(std::stol(processed.empty() ? "0" : processed) > 0);
            MESSAGE("pgbench -M ", mode, " -c 50 -j 2 -T 5 through pgmarina (pool ", pool_size,
                    "): tps = ", match(bench.output, "tps = ([0-9.]+)"), ", ", processed,
                    " transactions");
        }
        CHECK(setup().pgmarina.running());
    }

    TEST_CASE("500 concurrent clients on a pool of 5: PostgreSQL never sees more than 5") {
        constexpr int threads = 10;
        constexpr int per_thread = 50;
        constexpr int rounds = 3;
        std::atomic<bool> stop{false};
        int most = 0;
        int samples = 0;
        std::string sampler_error;
        std::thread sampler([&] {
            try {
                auto admin =
                    pq::Connection::connect(setup().cluster.conninfo(0, "postgres", "app"));
                while (!stop) {
                    const auto result = admin.exec(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'scram_user' "
                        "AND datname = 'app' AND backend_type = 'client backend'");
                    if (!result.ok()) throw std::runtime_error(result.error_message());
                    most = std::max(most, std::stoi(result.value(0, 0)));
                    ++samples;
                    std::this_thread::sleep_for(50ms);
                }
            } catch (const std::exception& e) {
                sampler_error = e.what();
            }
        });

        std::atomic<int> connected{0};
        std::atomic<int> answered{0};
        std::vector<std::string> errors(threads);
        const auto hold_until = Clock::now() + 4s;
        std::vector<std::thread> clients;
        for (int t = 0; t < threads; ++t) {
            clients.emplace_back([&, t] {
                try {
                    std::vector<pq::Connection> conns;
                    for (int i = 0; i < per_thread; ++i) {
                        conns.push_back(pq::Connection::connect(conninfo(setup().pgmarina)));
                        if (!conns.back().ok())
                            throw std::runtime_error(conns.back().error_message());
                        ++connected;
                    }
                    // All 50 queries of a thread in flight at once: 500 clients wait together.
                    for (int round = 0; round < rounds; ++round) {
                        for (auto& conn : conns) {
                            if (PQsendQuery(conn.native(), "SELECT pg_sleep(0.005)") == 0) {
                                throw std::runtime_error(PQerrorMessage(conn.native()));
                            }
                        }
                        const auto deadline = Clock::now() + 30s;
                        for (auto& conn : conns) {
                            const auto error = finish_query(conn.native(), deadline);
                            if (!error.empty()) throw std::runtime_error(error);
                            ++answered;
                        }
                    }
                    // Everyone stays connected a while, idle, holding no server.
                    std::this_thread::sleep_until(hold_until);
                    for (auto& conn : conns) {
                        if (!conn.exec("SELECT 1").ok()) throw std::runtime_error("after holding");
                    }
                } catch (const std::exception& e) {
                    errors[static_cast<std::size_t>(t)] = e.what();
                }
            });
        }
        for (auto& thread : clients)
            thread.join();
        stop = true;
        sampler.join();

        for (const auto& error : errors)
            CHECK_MESSAGE(error.empty(), error);
        CHECK_MESSAGE(sampler_error.empty(), sampler_error);
        CHECK(connected == threads * per_thread);
        CHECK(answered == threads * per_thread * rounds);
        CHECK(samples >= 20);
        CHECK(most == pool_size); // full use of the pool, and never more
        MESSAGE("500 clients: ", samples, " samples of pg_stat_activity, at most ", most,
                " backends");
        CHECK(setup().pgmarina.running());
    }

    TEST_CASE("a 200 MB result and a 20 MB query pass through without pgmarina holding them") {
        // A pgmarina of its own: the peak RSS must not be raised by the other cases' clients.
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{config_for(setup().cluster, port), port};
        auto conn = pq::Connection::connect(conninfo(pgmarina));
        REQUIRE_MESSAGE(conn.ok(), conn.error_message());
        REQUIRE(conn.exec("SELECT 1").ok()); // the pool and its server exist before measuring
        const long before_kb = support::proc_status_kb(pgmarina.pid(), "VmHWM");

        PGconn* native = conn.native();
        const auto started = Clock::now();
        REQUIRE(PQsendQuery(native, "SELECT repeat('x', 1000000) FROM generate_series(1, 200)"));
        REQUIRE(PQsetSingleRowMode(native) == 1); // keeps this process small too
        long long bytes = 0;
        int rows = 0;
        std::string error;
        const auto deadline = started + 60s;
        while (PGresult* result = next_result(native, deadline)) {
            const auto status = PQresultStatus(result);
            if (status == PGRES_SINGLE_TUPLE) {
                ++rows;
                bytes += PQgetlength(result, 0, 0);
            } else if (status != PGRES_TUPLES_OK && error.empty()) {
                error = PQresultErrorMessage(result);
            }
            PQclear(result);
        }
        const auto result_time = Clock::now() - started;
        CHECK_MESSAGE(error.empty(), error);
        CHECK(rows == 200);
        CHECK(bytes == 200'000'000);
        const long after_result_kb = support::proc_status_kb(pgmarina.pid(), "VmHWM");
        MESSAGE("pgmarina VmHWM before ", before_kb, " kB, after the 200 MB result ",
                after_result_kb, " kB (growth ", after_result_kb - before_kb, " kB), result in ",
                std::chrono::duration_cast<std::chrono::milliseconds>(result_time).count(), " ms");
        // Under a sanitizer, freed memory stays resident (see PgmarinaProcess::sanitized).
        if (!pgmarina.sanitized()) CHECK(after_result_kb - before_kb < 64 * 1024);

        // A bounded wait: the query is 20 MB and PostgreSQL answers within a second or two.
        std::string length;
        try {
            send_query(native, "SELECT length('" + std::string(20'000'000, 'q') + "')",
                       Clock::now() + 15s);
            while (PGresult* result = next_result(native, Clock::now() + 15s)) {
                if (PQresultStatus(result) == PGRES_TUPLES_OK) length = PQgetvalue(result, 0, 0);
                PQclear(result);
            }
        } catch (const std::exception& e) {
            FAIL_CHECK("20 MB query: " << std::string(e.what()));
        }
        CHECK(length == "20000000");
        const long after_query_kb = support::proc_status_kb(pgmarina.pid(), "VmHWM");
        MESSAGE("pgmarina VmHWM after the 20 MB query ", after_query_kb, " kB (growth ",
                after_query_kb - before_kb, " kB)");
        if (!pgmarina.sanitized()) CHECK(after_query_kb - before_kb < 64 * 1024);
        CHECK(pgmarina.running());
    }
}

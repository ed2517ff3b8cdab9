// Real drivers' named prepared statements through pgmarina in transaction pooling (issue 5):
// pgbench -M prepared, psycopg 3, asyncpg, pgJDBC and node-postgres, each a small script in
// tests/drivers that checks its results and exits non-zero when a statement breaks. Without
// the statement cache every one of them fails ("prepared statement ... does not exist" or
// "... already exists"). A missing driver skips its case, or fails it when PG_CLUSTER_REQUIRED
// is set (CI installs them all with etc/setup-debian.sh).

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

using support::PgCluster;
using support::PgmarinaProcess;

// A pool of 5 servers. pgJDBC sends extra_float_digits at startup, which PgBouncer users list
// in ignore_startup_parameters.
std::string config_for(const PgCluster& cluster, std::uint16_t port) {
    return "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\nunix_socket_dir = \"\"\npool_mode = \"transaction\"\n"
           "ignore_startup_parameters = [\"extra_float_digits\"]\n"
           "[databases.app]\npool_size = 5\nhosts = [\"127.0.0.1:" +
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

// libpq's environment for `port` (pgmarina's, or PostgreSQL's own).
std::string pg_env(int port) {
    return "PGHOST=127.0.0.1 PGPORT=" + std::to_string(port) +
           " PGUSER=scram_user PGDATABASE=app PGPASSWORD=" +
           setup().cluster.password("scram_user") + " ";
}

struct Run {
    int status = -1; // the exit status, or -1 if killed by a signal
    std::string output;
};

// Runs `command` ("VAR=value ... program args") and collects its output.
Run run(const std::string& command) {
    Run out;
    // A hung client fails its case within a minute instead of the whole test at meson's timeout.
    FILE* pipe = ::popen(("timeout 60 env " + command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> chunk{};
    while (std::fgets(chunk.data(), chunk.size(), pipe) != nullptr)
        out.output += chunk.data();
    const int status = ::pclose(pipe);
    out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

// Exit 77 (a driver script's "not installed") or 127 (the shell's "command not found").
bool missing(const Run& result) {
    if (result.status != 77 && result.status != 127) return false;
    const bool required = std::getenv("PG_CLUSTER_REQUIRED") != nullptr;
    if (required) FAIL("driver missing (etc/setup-debian.sh installs it): " << result.output);
    MESSAGE("skipped, driver missing: " << result.output);
    return true;
}

std::string script(const char* name) {
    return std::string(std::getenv("PGMARINA_DRIVERS")) + "/" + name;
}

// The Debian packages install the Python drivers for the system interpreter, which may not
// be the first python3 on PATH.
const char* const python = "/usr/bin/python3";

TEST_SUITE("integration.prepared_drivers") {
    TEST_CASE("pgbench -M prepared: 50 clients over 5 servers, no failed transaction") {
        const auto init = run(pg_env(setup().cluster.port(0)) + "pgbench -i -q -s 1");
        if (missing(init)) return;
        REQUIRE_MESSAGE(init.status == 0, init.output);
        // One thread per client: pgbench prepares a statement with the synchronous PQprepare
        // on its first use, so a client waiting for a server would block the clients sharing
        // its thread, which hold the servers in open transactions (a deadlock of pgbench's,
        // not of pooling; PgBouncer's behaves the same).
        const auto bench =
            run(pg_env(setup().port) + "pgbench -M prepared -c 50 -j 50 -t 20 --no-vacuum");
        CHECK_MESSAGE(bench.status == 0, bench.output);
        CHECK_MESSAGE(bench.output.find("actually processed: 1000/1000") != std::string::npos,
                      bench.output);
        CHECK_MESSAGE(bench.output.find("number of failed transactions: 0 ") != std::string::npos,
                      bench.output);
    }

    TEST_CASE("psycopg 3 with prepare_threshold=0") {
        const auto result =
            run(pg_env(setup().port) + python + " " + script("psycopg_prepared.py"));
        if (missing(result)) return;
        CHECK_MESSAGE(result.status == 0, result.output);
    }

    TEST_CASE("asyncpg with its default statement cache, 50 coroutines") {
        const auto result =
            run(pg_env(setup().port) + python + " " + script("asyncpg_prepared.py"));
        if (missing(result)) return;
        CHECK_MESSAGE(result.status == 0, result.output);
    }

    TEST_CASE("pgJDBC PreparedStatement past prepareThreshold on 8 connections") {
        const auto classes =
            support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-jdbc-")
                .string();
        const std::string jar = "/usr/share/java/postgresql.jar";
        const auto compiled = run("javac -d " + classes + " " + script("PreparedJdbc.java"));
        if (missing(compiled)) return;
        REQUIRE_MESSAGE(compiled.status == 0, compiled.output);
        const auto result =
            run(pg_env(setup().port) + "java -cp " + classes + ":" + jar + " PreparedJdbc");
        std::filesystem::remove_all(classes);
        if (result.output.find("ClassNotFoundException") != std::string::npos ||
            result.output.find("No suitable driver") != std::string::npos) {
            (void)missing(Run{77, result.output});
            return;
        }
        CHECK_MESSAGE(result.status == 0, result.output);
    }

    TEST_CASE("node-postgres named queries from 20 clients") {
        // etc/setup-debian.sh installs node-postgres from npm under this prefix.
        const auto result =
            run(pg_env(setup().port) + "NODE_PATH=/usr/local/lib/pgmarina-node/node_modules node " +
                script("node_pg_prepared.js"));
        if (missing(result)) return;
        CHECK_MESSAGE(result.status == 0, result.output);
    }
}

} // namespace

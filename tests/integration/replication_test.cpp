// The cluster fixture itself, against real PostgreSQL: replicas stream, the test users log in
// with the password types the proxy will meet, and a failover leaves a working topology.

#include "tests/support/pg_cluster.hpp"
#include "tests/support/pq.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::StopMode;
namespace pq = support::pq;

// Replicas replay asynchronously, so tests poll with a deadline rather than sleep and hope.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

pq::Connection connect_ok(const std::string& conninfo) {
    pq::Connection conn = pq::Connection::connect(conninfo);
    REQUIRE_MESSAGE(conn.ok(), conninfo << ": " << conn.error_message());
    return conn;
}

void exec_ok(pq::Connection& conn, const std::string& sql) {
    const pq::Result result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
}

std::string query_value(pq::Connection& conn, const std::string& sql) {
    const pq::Result result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
    REQUIRE(result.ntuples() == 1);
    return result.value(0, 0);
}

// Waits until the row with this id has been replayed on the node behind conn; returns its text,
// or "" if it never arrived (the table may not exist there yet either).
std::string replayed_text(pq::Connection& conn, int id) {
    std::string text;
    eventually([&] {
        const pq::Result result =
            conn.exec("SELECT note FROM marks WHERE id = " + std::to_string(id));
        if (result.ok() && result.ntuples() == 1) {
            text = result.value(0, 0);
            return true;
        }
        return false;
    });
    return text;
}

std::string in_recovery(pq::Connection& conn) {
    return query_value(conn, "SELECT pg_is_in_recovery()");
}

} // namespace

TEST_SUITE("integration.replication") {
    TEST_CASE("a row written on the primary is read on every replica") {
        PgCluster cluster{{.replicas = 2}};
        REQUIRE(cluster.node_count() == 3);

        pq::Connection primary = connect_ok(cluster.conninfo(0, "scram_user", "app"));
        CHECK(in_recovery(primary) == "f");
        exec_ok(primary, "CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)");
        CHECK(primary.exec("INSERT INTO marks VALUES (1, 'written on node0')").command_status() ==
              "INSERT 0 1");

        for (int node = 1; node <= 2; ++node) {
            CAPTURE(node);
            pq::Connection replica = connect_ok(cluster.conninfo(node, "scram_user", "app"));
            CHECK(in_recovery(replica) == "t");
            CHECK(replayed_text(replica, 1) == "written on node0");
            // 25006: read_only_sql_transaction; a hot standby serves reads only.
            CHECK(replica.exec("INSERT INTO marks VALUES (2, 'on a replica')").sqlstate() ==
                  "25006");
        }
    }

    TEST_CASE("scram_user and md5_user log in over TCP; a wrong password fails with 28P01") {
        PgCluster cluster{{.replicas = 0}};

        for (const std::string user : {"scram_user", "md5_user"}) {
            CAPTURE(user);
            pq::Connection conn = connect_ok(cluster.conninfo(0, user, "app"));
            CHECK(query_value(conn, "SELECT current_user") == user);

            const std::string wrong_password = "host=" + cluster.host() +
                                               " port=" + std::to_string(cluster.port(0)) +
                                               " user=" + user + " password=wrong dbname=app";
            const pq::Connection refused = pq::Connection::connect(wrong_password);
            CHECK_FALSE(refused.ok());
            CHECK(refused.sqlstate() == "28P01");
        }

        // The stored hash decides which exchange the server (and later pgmarina) must speak.
        pq::Connection admin = connect_ok(cluster.conninfo(0));
        CHECK(query_value(admin, "SELECT left(rolpassword, 14) FROM pg_authid "
                                 "WHERE rolname = 'scram_user'") == "SCRAM-SHA-256$");
        CHECK(query_value(admin, "SELECT left(rolpassword, 3) FROM pg_authid "
                                 "WHERE rolname = 'md5_user'") == "md5");
    }

    TEST_CASE("failover: a promoted replica takes writes and the old primary rejoins it") {
        PgCluster cluster{{.replicas = 2}};
        {
            pq::Connection primary = connect_ok(cluster.conninfo(0, "scram_user", "app"));
            exec_ok(primary, "CREATE TABLE marks (id int PRIMARY KEY, note text NOT NULL)");
            exec_ok(primary, "INSERT INTO marks VALUES (1, 'before the failover')");
        }
        // Replication is asynchronous: only a replayed row survives the crash of the primary.
        for (int node = 1; node <= 2; ++node) {
            CAPTURE(node);
            pq::Connection replica = connect_ok(cluster.conninfo(node, "scram_user", "app"));
            REQUIRE(replayed_text(replica, 1) == "before the failover");
        }

        cluster.stop(0, StopMode::immediate);
        CHECK_FALSE(pq::Connection::connect(cluster.conninfo(0)).ok());

        cluster.promote(1);
        pq::Connection new_primary = connect_ok(cluster.conninfo(1, "scram_user", "app"));
        CHECK(in_recovery(new_primary) == "f");
        exec_ok(new_primary, "INSERT INTO marks VALUES (2, 'written on node1')");

        // The old primary comes back as a primary of its own: the split brain a proxy must
        // notice. follow turns it into a standby of the new primary.
        cluster.start(0);
        {
            pq::Connection old_primary = connect_ok(cluster.conninfo(0, "scram_user", "app"));
            CHECK(in_recovery(old_primary) == "f");
        }
        cluster.follow(0, 1);
        cluster.follow(2, 1);
        cluster.restart(2, StopMode::immediate);

        for (const int node : {0, 2}) {
            CAPTURE(node);
            pq::Connection standby = connect_ok(cluster.conninfo(node, "scram_user", "app"));
            CHECK(in_recovery(standby) == "t");
            CHECK(replayed_text(standby, 2) == "written on node1");
        }
    }
}

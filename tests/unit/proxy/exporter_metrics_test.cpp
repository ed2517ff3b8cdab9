#include "proxy/exporter_metrics.hpp"

#include "tests/support/console_tables.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

using prometheus::MetricFamily;
using prometheus::MetricType;
using std::nullopt;
using support::table;

namespace {

using Labels = std::map<std::string, std::string>;

const MetricFamily* find(const std::vector<MetricFamily>& families, const std::string& name) {
    const auto found = std::find_if(families.begin(), families.end(),
                                    [&](const MetricFamily& f) { return f.name == name; });
    return found == families.end() ? nullptr : &*found;
}

Labels labels_of(const prometheus::ClientMetric& metric) {
    Labels labels;
    for (const auto& label : metric.label)
        labels[label.name] = label.value;
    return labels;
}

// The one sample of family `name` (which must exist and have exactly one sample).
const prometheus::ClientMetric& only(const std::vector<MetricFamily>& families,
                                     const std::string& name) {
    const MetricFamily* family = find(families, name);
    REQUIRE_MESSAGE(family != nullptr, name);
    REQUIRE(family->metric.size() == 1);
    return family->metric.front();
}

double gauge(const std::vector<MetricFamily>& families, const std::string& name) {
    REQUIRE(find(families, name)->type == MetricType::Gauge);
    return only(families, name).gauge.value;
}

double counter(const std::vector<MetricFamily>& families, const std::string& name) {
    REQUIRE(find(families, name)->type == MetricType::Counter);
    return only(families, name).counter.value;
}

std::set<std::string> names(const std::vector<MetricFamily>& families) {
    std::set<std::string> out;
    for (const auto& family : families)
        out.insert(family.name);
    return out;
}

} // namespace

TEST_SUITE("proxy.exporter_metrics") {
    TEST_CASE("every family pgbouncer_exporter 0.12 emits, by exact name") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        const std::set<std::string> expected{
            "pgbouncer_up",
            "pgbouncer_version_info",
            "pgbouncer_databases",
            "pgbouncer_users",
            "pgbouncer_pools",
            "pgbouncer_free_clients",
            "pgbouncer_used_clients",
            "pgbouncer_login_clients",
            "pgbouncer_free_servers",
            "pgbouncer_used_servers",
            "pgbouncer_cached_dns_names",
            "pgbouncer_cached_dns_zones",
            "pgbouncer_in_flight_dns_queries",
            "pgbouncer_config_max_client_connections",
            "pgbouncer_config_max_user_connections",
            "pgbouncer_databases_pool_size",
            "pgbouncer_databases_reserve_pool",
            "pgbouncer_databases_max_connections",
            "pgbouncer_databases_current_connections",
            "pgbouncer_databases_paused",
            "pgbouncer_databases_disabled",
            "pgbouncer_stats_totals_server_assignments_total",
            "pgbouncer_stats_totals_sql_transactions_pooled_total",
            "pgbouncer_stats_totals_queries_pooled_total",
            "pgbouncer_stats_totals_received_bytes_total",
            "pgbouncer_stats_totals_sent_bytes_total",
            "pgbouncer_stats_totals_server_in_transaction_seconds_total",
            "pgbouncer_stats_totals_queries_duration_seconds_total",
            "pgbouncer_stats_totals_client_wait_seconds_total",
            "pgbouncer_stats_totals_client_parses_total",
            "pgbouncer_stats_totals_server_parses_total",
            "pgbouncer_stats_totals_binds_total",
            "pgbouncer_pools_client_active_connections",
            "pgbouncer_pools_client_waiting_connections",
            "pgbouncer_pools_client_active_cancel_connections",
            "pgbouncer_pools_client_waiting_cancel_connections",
            "pgbouncer_pools_server_active_connections",
            "pgbouncer_pools_server_active_cancel_connections",
            "pgbouncer_pools_server_being_canceled_connections",
            "pgbouncer_pools_server_idle_connections",
            "pgbouncer_pools_server_used_connections",
            "pgbouncer_pools_server_testing_connections",
            "pgbouncer_pools_server_login_connections",
            "pgbouncer_pools_client_maxwait_seconds",
            "pgbouncer_client_connections",
        };
        CHECK(names(families) == expected);
        for (const auto& family : families) {
            CAPTURE(family.name);
            CHECK_FALSE(family.help.empty());
            const bool total = family.name.ends_with("_total");
            CHECK(family.type == (total ? MetricType::Counter : MetricType::Gauge));
        }
    }

    TEST_CASE("SHOW DATABASES: six labels, NULL force_user as empty") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        const auto& pool_size = only(families, "pgbouncer_databases_pool_size");
        CHECK(labels_of(pool_size) == Labels{{"name", "app"},
                                             {"host", "pg-0"},
                                             {"port", "5432"},
                                             {"database", "appdb"},
                                             {"force_user", ""},
                                             {"pool_mode", "transaction"}});
        CHECK(pool_size.gauge.value == 20);
        CHECK(gauge(families, "pgbouncer_databases_reserve_pool") == 5);
        CHECK(gauge(families, "pgbouncer_databases_current_connections") == 3);
    }

    TEST_CASE("reserve_pool, PgBouncer's name before 1.24, maps to the same metric") {
        proxy::ConsoleTables tables;
        tables.databases = table({"name", "reserve_pool"}, {{"old", "2"}});
        const auto families = proxy::exporter_families(tables);
        CHECK(gauge(families, "pgbouncer_databases_reserve_pool") == 2);
    }

    TEST_CASE("SHOW STATS_TOTALS: counters labelled by database, microseconds as seconds") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        const auto& xact_time =
            only(families, "pgbouncer_stats_totals_server_in_transaction_seconds_total");
        CHECK(labels_of(xact_time) == Labels{{"database", "app"}});
        CHECK(xact_time.counter.value == doctest::Approx(1.5));
        CHECK(counter(families, "pgbouncer_stats_totals_queries_duration_seconds_total") ==
              doctest::Approx(0.00025));
        CHECK(counter(families, "pgbouncer_stats_totals_client_wait_seconds_total") ==
              doctest::Approx(0.000009));
        // Counts and bytes are not scaled.
        CHECK(counter(families, "pgbouncer_stats_totals_sql_transactions_pooled_total") == 10);
        CHECK(counter(families, "pgbouncer_stats_totals_queries_pooled_total") == 40);
        CHECK(counter(families, "pgbouncer_stats_totals_received_bytes_total") == 220);
        CHECK(counter(families, "pgbouncer_stats_totals_sent_bytes_total") == 460);
        CHECK(counter(families, "pgbouncer_stats_totals_server_assignments_total") == 7);
        CHECK(counter(families, "pgbouncer_stats_totals_binds_total") == 555);
    }

    TEST_CASE("SHOW POOLS: labelled by database and user; maxwait in whole seconds") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        const auto& active = only(families, "pgbouncer_pools_client_active_connections");
        CHECK(labels_of(active) == Labels{{"database", "app"}, {"user", "alice"}});
        CHECK(active.gauge.value == 2);
        CHECK(gauge(families, "pgbouncer_pools_client_waiting_connections") == 1);
        CHECK(gauge(families, "pgbouncer_pools_server_idle_connections") == 3);
        CHECK(gauge(families, "pgbouncer_pools_client_maxwait_seconds") == 4);
    }

    TEST_CASE("SHOW LISTS and SHOW CONFIG: unlabelled gauges from their rows") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        CHECK(labels_of(only(families, "pgbouncer_used_clients")).empty());
        CHECK(gauge(families, "pgbouncer_databases") == 1);
        CHECK(gauge(families, "pgbouncer_users") == 2);
        CHECK(gauge(families, "pgbouncer_free_clients") == 47);
        CHECK(gauge(families, "pgbouncer_used_servers") == 5);
        CHECK(gauge(families, "pgbouncer_config_max_client_connections") == 100);
        CHECK(gauge(families, "pgbouncer_config_max_user_connections") == 0);
        // Rows without a metric in the exporter give none here either.
        CHECK(find(families, "pgbouncer_peers") == nullptr);
        CHECK(find(families, "pgbouncer_config_auth_type") == nullptr);
    }

    TEST_CASE("SHOW CLIENTS: one sample per label set, counting its rows") {
        const auto families = proxy::exporter_families(support::sample_console_tables());
        const MetricFamily* clients = find(families, "pgbouncer_client_connections");
        REQUIRE(clients != nullptr);
        std::map<Labels, double> counts;
        for (const auto& metric : clients->metric)
            counts[labels_of(metric)] = metric.gauge.value;
        const Labels worker{{"database", "app"},
                            {"user", "alice"},
                            {"application_name", "worker"},
                            {"state", "active"}};
        const Labels psql{{"database", "app"},
                          {"user", "alice"},
                          {"application_name", "psql"},
                          {"state", "waiting"}};
        CHECK(counts == std::map<Labels, double>{{worker, 2}, {psql, 1}});
    }

    TEST_CASE("meta: pgbouncer_up and pgbouncer_version_info") {
        auto tables = support::sample_console_tables();
        auto families = proxy::exporter_families(tables);
        CHECK(gauge(families, "pgbouncer_up") == 1);
        const auto& version = only(families, "pgbouncer_version_info");
        CHECK(labels_of(version) == Labels{{"version", "PgBouncer 1.25.2"}});
        CHECK(version.gauge.value == 1);

        tables.version.clear();
        families = proxy::exporter_families(tables);
        CHECK(find(families, "pgbouncer_version_info") == nullptr);
        CHECK(gauge(families, "pgbouncer_up") == 1);
    }

    TEST_CASE("missing tables and columns yield no metric, extra columns are ignored") {
        SUBCASE("no tables at all: only pgbouncer_up") {
            CHECK(names(proxy::exporter_families({})) == std::set<std::string>{"pgbouncer_up"});
        }
        SUBCASE("a pools table without sv_idle and with a column the exporter does not know") {
            proxy::ConsoleTables tables;
            tables.pools =
                table({"database", "user", "cl_active", "cl_idle"}, {{"app", "alice", "3", "9"}});
            const auto families = proxy::exporter_families(tables);
            CHECK(gauge(families, "pgbouncer_pools_client_active_connections") == 3);
            CHECK(find(families, "pgbouncer_pools_server_idle_connections") == nullptr);
            CHECK(names(families).size() == 2); // and pgbouncer_up
        }
        SUBCASE("a label column that is missing is an empty label") {
            proxy::ConsoleTables tables;
            tables.databases = table({"name", "pool_size"}, {{"app", "20"}});
            const auto families = proxy::exporter_families(tables);
            CHECK(labels_of(only(families, "pgbouncer_databases_pool_size")) ==
                  Labels{{"name", "app"},
                         {"host", ""},
                         {"port", ""},
                         {"database", ""},
                         {"force_user", ""},
                         {"pool_mode", ""}});
        }
        SUBCASE("a table with columns but no rows") {
            proxy::ConsoleTables tables;
            tables.pools = table({"database", "user", "cl_active"}, {});
            tables.clients = table({"database", "user", "application_name", "state"}, {});
            CHECK(names(proxy::exporter_families(tables)).size() == 1);
        }
    }

    TEST_CASE("odd cells: NULL is 0, text that is not a number is skipped, bad UTF-8 replaced") {
        proxy::ConsoleTables tables;
        tables.pools = table({"database", "user", "cl_active", "cl_waiting"},
                             {{"app", "alice", nullopt, "many"},
                              {"app", "bob", "1", "2"},
                              {"app\xff", std::string("\xe2\x82", 2), "3", "4"}});
        tables.lists = table({"list", "items"}, {{"databases", "x"}, {"users", nullopt}});
        const auto families = proxy::exporter_families(tables);

        const MetricFamily* active = find(families, "pgbouncer_pools_client_active_connections");
        REQUIRE(active != nullptr);
        REQUIRE(active->metric.size() == 3);
        CHECK(active->metric[0].gauge.value == 0);
        CHECK(labels_of(active->metric[2]) ==
              Labels{{"database", "<invalid>"}, {"user", "<invalid>"}});

        const MetricFamily* waiting = find(families, "pgbouncer_pools_client_waiting_connections");
        REQUIRE(waiting != nullptr);
        REQUIRE(waiting->metric.size() == 2); // alice's "many" has no sample
        CHECK(labels_of(waiting->metric[0]) == Labels{{"database", "app"}, {"user", "bob"}});

        CHECK(find(families, "pgbouncer_databases") == nullptr);
        CHECK(gauge(families, "pgbouncer_users") == 0);
    }

    TEST_CASE("valid UTF-8 labels pass through unchanged") {
        proxy::ConsoleTables tables;
        // 2-, 3- and 4-byte sequences: "é", "€", "𝄞".
        const std::string name = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e";
        tables.pools = table({"database", "user", "cl_active"}, {{name, "u", "1"}});
        const auto families = proxy::exporter_families(tables);
        CHECK(
            labels_of(only(families, "pgbouncer_pools_client_active_connections")).at("database") ==
            name);
        SUBCASE("but not overlong forms or surrogates") {
            for (const std::string bad :
                 {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
                tables.pools = table({"database", "user", "cl_active"}, {{bad, "u", "1"}});
                const auto rejected = proxy::exporter_families(tables);
                CHECK(labels_of(only(rejected, "pgbouncer_pools_client_active_connections"))
                          .at("database") == "<invalid>");
            }
        }
    }
}

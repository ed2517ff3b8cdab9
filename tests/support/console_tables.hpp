#pragma once

// Admin console tables for the /metrics tests, built by hand with PgBouncer 1.25's column names
// (reference.md 1.1), so the exporter mapping is checked against what PgBouncer really sends.

#include "proxy/exporter_metrics.hpp"

#include <string>
#include <utility>
#include <vector>

namespace support {

// A table of text columns; the exporter mapping never looks at column types.
inline proxy::Table table(const std::vector<std::string>& columns,
                          std::vector<std::vector<proxy::Cell>> rows) {
    proxy::Table out;
    for (const auto& name : columns)
        out.columns.push_back({name, proxy::ColumnType::text});
    out.rows = std::move(rows);
    return out;
}

// One database "app" (alias of "appdb" on pg-0) with one pool, two clients of one application and
// one of another, and a few lists and settings: every family the exporter emits has a sample.
inline proxy::ConsoleTables sample_console_tables() {
    using std::nullopt;
    proxy::ConsoleTables tables;
    tables.databases =
        table({"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
               "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
               "max_connections", "current_connections", "max_client_connections",
               "current_client_connections", "paused", "disabled"},
              {{"app", "pg-0", "5432", "appdb", nullopt, "20", "0", "5", "3600", "transaction",
                nullopt, "0", "3", "0", "3", "0", "0"}});
    tables.stats_totals =
        table({"database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
               "bytes_sent", "xact_time", "query_time", "wait_time", "client_parse_count",
               "server_parse_count", "bind_count"},
              {{"app", "7", "10", "40", "220", "460", "1500000", "250", "9", "5", "55", "555"}});
    tables.pools = table({"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
                          "cl_waiting_cancel_req", "sv_active", "sv_active_cancel",
                          "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
                          "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts"},
                         {{"app", "alice", "2", "1", "0", "0", "2", "0", "0", "3", "0", "0", "0",
                           "4", "250000", "transaction", nullopt}});
    tables.lists = table({"list", "items"}, {{"databases", "1"},
                                             {"users", "2"},
                                             {"peers", "0"},
                                             {"pools", "1"},
                                             {"peer_pools", "0"},
                                             {"free_clients", "47"},
                                             {"used_clients", "3"},
                                             {"login_clients", "0"},
                                             {"free_servers", "45"},
                                             {"used_servers", "5"},
                                             {"dns_names", "0"},
                                             {"dns_zones", "0"},
                                             {"dns_queries", "0"},
                                             {"dns_pending", "0"}});
    tables.config = table({"key", "value", "default", "changeable"},
                          {{"auth_type", "md5", "md5", "yes"},
                           {"max_client_conn", "100", "100", "yes"},
                           {"max_user_connections", "0", "0", "yes"}});
    tables.clients = table({"type",
                            "user",
                            "database",
                            "replication",
                            "state",
                            "addr",
                            "port",
                            "local_addr",
                            "local_port",
                            "connect_time",
                            "request_time",
                            "wait",
                            "wait_us",
                            "close_needed",
                            "ptr",
                            "link",
                            "remote_pid",
                            "tls",
                            "application_name",
                            "prepared_statements",
                            "id"},
                           {{"C",
                             "alice",
                             "app",
                             "none",
                             "active",
                             "10.0.0.5",
                             "51234",
                             "10.0.0.1",
                             "6432",
                             "2026-01-01 00:00:00 UTC",
                             "2026-01-01 00:00:01 UTC",
                             "0",
                             "0",
                             "0",
                             nullopt,
                             nullopt,
                             "0",
                             "",
                             "worker",
                             "0",
                             "1"},
                            {"C",
                             "alice",
                             "app",
                             "none",
                             "active",
                             "10.0.0.5",
                             "51235",
                             "10.0.0.1",
                             "6432",
                             "2026-01-01 00:00:00 UTC",
                             "2026-01-01 00:00:01 UTC",
                             "0",
                             "0",
                             "0",
                             nullopt,
                             nullopt,
                             "0",
                             "",
                             "worker",
                             "0",
                             "2"},
                            {"C",
                             "alice",
                             "app",
                             "none",
                             "waiting",
                             "10.0.0.6",
                             "40000",
                             "10.0.0.1",
                             "6432",
                             "2026-01-01 00:00:00 UTC",
                             "2026-01-01 00:00:01 UTC",
                             "4",
                             "250000",
                             "0",
                             nullopt,
                             nullopt,
                             "0",
                             "",
                             "psql",
                             "0",
                             "3"}});
    tables.version = "PgBouncer 1.25.2";
    return tables;
}

} // namespace support

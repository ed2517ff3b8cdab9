// pgbouncer_exporter's metrics, computed in-process from the admin console's SHOW tables.
//
// prometheus-community/pgbouncer_exporter 0.12 runs SHOW commands against PgBouncer's console on
// every scrape and turns columns into metrics (reference.md 1.3). Dashboards and alerts are written
// against its names, so /metrics emits the same families from the same tables: same names, help,
// types, labels and unit conversions. Reading the console's tables, rather than pgmarina's
// internals, keeps /metrics and SHOW in agreement by construction.
#pragma once

#include "proxy/admin_reply.hpp"

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace proxy {

// One scrape's worth of console output, each table as the SHOW command of its name returns it.
struct ConsoleTables {
    Table databases;     // SHOW DATABASES
    Table stats_totals;  // SHOW STATS_TOTALS
    Table pools;         // SHOW POOLS
    Table lists;         // SHOW LISTS
    Table config;        // SHOW CONFIG
    Table clients;       // SHOW CLIENTS
    std::string version; // SHOW VERSION's one value; "" emits no pgbouncer_version_info
};

// The exporter's families from `tables`, plus pgbouncer_up (always 1: the console answered) and
// pgbouncer_version_info{version}. Columns are found by name, so tables may carry columns the
// exporter does not read; a missing column yields no metric, and a family without samples is left
// out, as the exporter does. Odd cells:
//   * a NULL number counts as 0 (the exporter sends NaN) and a NULL label is "" (as it does);
//   * a value that is not a number yields no sample, as in the exporter;
//   * a label that is not valid UTF-8 becomes "<invalid>", as in the exporter: Prometheus rejects a
//     whole scrape over one bad label, and application_name comes from clients.
[[nodiscard]] std::vector<prometheus::MetricFamily> exporter_families(const ConsoleTables& tables);

} // namespace proxy

#include "proxy/exporter_metrics.hpp"

#include <array>
#include <charconv>
#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// A column the exporter turns into one family: pgbouncer_<namespace>_<name>.
struct ColumnMetric {
    std::string_view column;
    std::string_view name;
    MetricType type;
    double factor; // PgBouncer's times are microseconds; Prometheus wants seconds
    std::string_view help;
    std::string_view alias = {}; // the column's older name, read when `column` is absent
};

// A row-valued table (SHOW LISTS, SHOW CONFIG): the row whose key is `key` becomes a gauge.
struct KeyedMetric {
    std::string_view key;
    std::string_view name;
    std::string_view help;
};

constexpr double microseconds = 1e-6;

constexpr std::array<std::string_view, 6> database_labels{"name",     "host",       "port",
                                                          "database", "force_user", "pool_mode"};
constexpr std::array database_metrics{
    ColumnMetric{"pool_size", "pool_size", MetricType::Gauge, 1,
                 "Server connections the pool may hold (pool_size)"},
    // PgBouncer 1.24 renamed reserve_pool to reserve_pool_size; the metric kept its name (#271).
    ColumnMetric{"reserve_pool_size", "reserve_pool", MetricType::Gauge, 1,
                 "Extra server connections the pool may open after reserve_pool_timeout",
                 "reserve_pool"},
    ColumnMetric{"max_connections", "max_connections", MetricType::Gauge, 1,
                 "Cap on server connections to this database (0: none)"},
    ColumnMetric{"current_connections", "current_connections", MetricType::Gauge, 1,
                 "Server connections to this database now"},
    ColumnMetric{"paused", "paused", MetricType::Gauge, 1,
                 "Whether PAUSE holds this database (1) or not (0)"},
    ColumnMetric{"disabled", "disabled", MetricType::Gauge, 1,
                 "Whether DISABLE refuses new clients of this database (1) or not (0)"},
};

constexpr std::array<std::string_view, 1> stats_labels{"database"};
constexpr std::array stats_metrics{
    ColumnMetric{"server_assignment_count", "server_assignments_total", MetricType::Counter, 1,
                 "Times a client was given a server"},
    ColumnMetric{"xact_count", "sql_transactions_pooled_total", MetricType::Counter, 1,
                 "Transactions carried"},
    ColumnMetric{"query_count", "queries_pooled_total", MetricType::Counter, 1, "Queries carried"},
    ColumnMetric{"bytes_received", "received_bytes_total", MetricType::Counter, 1,
                 "Bytes received from clients"},
    ColumnMetric{"bytes_sent", "sent_bytes_total", MetricType::Counter, 1, "Bytes sent to clients"},
    ColumnMetric{"xact_time", "server_in_transaction_seconds_total", MetricType::Counter,
                 microseconds, "Seconds servers spent inside client transactions"},
    ColumnMetric{"query_time", "queries_duration_seconds_total", MetricType::Counter, microseconds,
                 "Seconds servers spent answering client queries"},
    ColumnMetric{"wait_time", "client_wait_seconds_total", MetricType::Counter, microseconds,
                 "Seconds clients waited for a server"},
    ColumnMetric{"client_parse_count", "client_parses_total", MetricType::Counter, 1,
                 "Parse messages of named statements from clients"},
    ColumnMetric{"server_parse_count", "server_parses_total", MetricType::Counter, 1,
                 "Parse messages sent to servers for clients' named statements"},
    ColumnMetric{"bind_count", "binds_total", MetricType::Counter, 1,
                 "Bind messages of named statements"},
    // SHOW STATS's total_requests before PgBouncer 1.8; the exporter still maps the column.
    ColumnMetric{"requests", "queries_total", MetricType::Counter, 1,
                 "Queries carried (the column PgBouncer called requests)"},
};

constexpr std::array<std::string_view, 2> pool_labels{"database", "user"};
constexpr std::array pool_metrics{
    ColumnMetric{"cl_active", "client_active_connections", MetricType::Gauge, 1,
                 "Clients with a server, or idle and not waiting"},
    ColumnMetric{"cl_waiting", "client_waiting_connections", MetricType::Gauge, 1,
                 "Clients waiting for a server"},
    ColumnMetric{"cl_active_cancel_req", "client_active_cancel_connections", MetricType::Gauge, 1,
                 "Cancel requests forwarded and not yet answered"},
    ColumnMetric{"cl_waiting_cancel_req", "client_waiting_cancel_connections", MetricType::Gauge, 1,
                 "Cancel requests not yet forwarded"},
    ColumnMetric{"sv_active", "server_active_connections", MetricType::Gauge, 1,
                 "Servers lent to a client"},
    ColumnMetric{"sv_active_cancel", "server_active_cancel_connections", MetricType::Gauge, 1,
                 "Cancel requests in flight to servers"},
    ColumnMetric{"sv_being_canceled", "server_being_canceled_connections", MetricType::Gauge, 1,
                 "Released servers held back until the cancel requests aimed at them are done"},
    ColumnMetric{"sv_idle", "server_idle_connections", MetricType::Gauge, 1,
                 "Servers idle and ready for a client"},
    ColumnMetric{"sv_used", "server_used_connections", MetricType::Gauge, 1,
                 "Idle servers due a server_check_query before their next client"},
    ColumnMetric{"sv_tested", "server_testing_connections", MetricType::Gauge, 1,
                 "Servers running server_reset_query or server_check_query"},
    ColumnMetric{"sv_login", "server_login_connections", MetricType::Gauge, 1,
                 "Servers logging in"},
    // Whole seconds, as the exporter reads it; maxwait_us (the fraction) is not added in.
    ColumnMetric{"maxwait", "client_maxwait_seconds", MetricType::Gauge, 1,
                 "Whole seconds the longest-waiting client has waited"},
};

// SHOW LISTS rows the exporter knows; peers, peer_pools and dns_pending have no metric.
constexpr std::array list_metrics{
    KeyedMetric{"databases", "pgbouncer_databases", "Count of databases"},
    KeyedMetric{"users", "pgbouncer_users", "Count of users"},
    KeyedMetric{"pools", "pgbouncer_pools", "Count of pools"},
    KeyedMetric{"free_clients", "pgbouncer_free_clients", "Count of free clients"},
    KeyedMetric{"used_clients", "pgbouncer_used_clients", "Count of used clients"},
    KeyedMetric{"login_clients", "pgbouncer_login_clients", "Count of clients in login state"},
    KeyedMetric{"free_servers", "pgbouncer_free_servers", "Count of free servers"},
    KeyedMetric{"used_servers", "pgbouncer_used_servers", "Count of used servers"},
    KeyedMetric{"dns_names", "pgbouncer_cached_dns_names", "Count of DNS names in the cache"},
    KeyedMetric{"dns_zones", "pgbouncer_cached_dns_zones", "Count of DNS zones in the cache"},
    KeyedMetric{"dns_queries", "pgbouncer_in_flight_dns_queries", "Count of in-flight DNS queries"},
};

constexpr std::array config_metrics{
    KeyedMetric{"max_client_conn", "pgbouncer_config_max_client_connections",
                "The max_client_conn setting"},
    KeyedMetric{"max_user_connections", "pgbouncer_config_max_user_connections",
                "The max_user_connections setting"},
};

constexpr std::array<std::string_view, 4> client_labels{"database", "user", "application_name",
                                                        "state"};

// Structurally valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        unsigned char low = 0x80;
        unsigned char high = 0xBF;
        if (lead < 0x80) {
            ++i;
            continue;
        }
        if (lead >= 0xC2 && lead <= 0xDF) {
            length = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            length = 3;
            if (lead == 0xE0) low = 0xA0;  // overlong
            if (lead == 0xED) high = 0x9F; // surrogates
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            length = 4;
            if (lead == 0xF0) low = 0x90;  // overlong
            if (lead == 0xF4) high = 0x8F; // above U+10FFFF
        } else {
            return false;
        }
        if (text.size() - i < length) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            const unsigned char min = k == 1 ? low : 0x80;
            const unsigned char max = k == 1 ? high : 0xBF;
            if (next < min || next > max) return false;
        }
        i += length;
    }
    return true;
}

std::string label_value(const Cell& cell) {
    if (!cell) return {};
    if (!valid_utf8(*cell)) return "<invalid>";
    return *cell;
}

// The cell as a number; NULL is 0, and text that is not wholly a number is no value.
std::optional<double> number(const Cell& cell) {
    if (!cell) return 0.0;
    double value = 0;
    const char* end = cell->data() + cell->size();
    const auto [stop, ec] = std::from_chars(cell->data(), end, value);
    if (cell->empty() || ec != std::errc{} || stop != end) return std::nullopt;
    return value;
}

// The labels of every row of `table`, in `names` order; a label whose column is absent is "".
std::vector<std::vector<ClientMetric::Label>> row_labels(const Table& table,
                                                         std::span<const std::string_view> names) {
    std::vector<std::optional<std::size_t>> columns;
    for (std::string_view name : names)
        columns.push_back(table.column(name));
    std::vector<std::vector<ClientMetric::Label>> rows;
    for (const auto& row : table.rows) {
        auto& labels = rows.emplace_back();
        for (std::size_t i = 0; i < names.size(); ++i) {
            const auto& column = columns[i];
            const bool present = column && *column < row.size();
            labels.push_back({std::string(names[i]), present ? label_value(row[*column]) : ""});
        }
    }
    return rows;
}

ClientMetric sample(MetricType type, double value, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric metric;
    metric.label = std::move(labels);
    if (type == MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    return metric;
}

void add_if_sampled(std::vector<MetricFamily>& out, MetricFamily family) {
    if (!family.metric.empty()) out.push_back(std::move(family));
}

// One family per metric whose column `table` has: pgbouncer_exporter's generic namespace mapping.
void add_columns(std::vector<MetricFamily>& out, const Table& table, std::string_view space,
                 std::span<const std::string_view> label_names,
                 std::span<const ColumnMetric> metrics) {
    const auto labels = row_labels(table, label_names);
    for (const ColumnMetric& spec : metrics) {
        auto column = table.column(spec.column);
        if (!column && !spec.alias.empty()) column = table.column(spec.alias);
        if (!column) continue;
        MetricFamily family{"pgbouncer_" + std::string(space) + "_" + std::string(spec.name),
                            std::string(spec.help),
                            spec.type,
                            {}};
        for (std::size_t r = 0; r < table.rows.size(); ++r) {
            const auto& row = table.rows[r];
            const auto value = *column < row.size() ? number(row[*column]) : std::nullopt;
            if (value) family.metric.push_back(sample(spec.type, *value * spec.factor, labels[r]));
        }
        add_if_sampled(out, std::move(family));
    }
}

// SHOW LISTS and SHOW CONFIG: a key column and a value column, one gauge per known key.
void add_keyed(std::vector<MetricFamily>& out, const Table& table, std::string_view key_column,
               std::string_view value_column, std::span<const KeyedMetric> metrics) {
    const auto key = table.column(key_column);
    const auto value = table.column(value_column);
    if (!key || !value) return;
    for (const KeyedMetric& spec : metrics) {
        MetricFamily family{std::string(spec.name), std::string(spec.help), MetricType::Gauge, {}};
        for (const auto& row : table.rows) {
            if (*key >= row.size() || *value >= row.size() || row[*key] != spec.key) continue;
            if (const auto items = number(row[*value])) {
                family.metric.push_back(sample(MetricType::Gauge, *items));
            }
            break;
        }
        add_if_sampled(out, std::move(family));
    }
}

// SHOW CLIENTS has a row per client; the exporter counts the rows sharing one label set.
void add_client_counts(std::vector<MetricFamily>& out, const Table& clients) {
    std::map<std::vector<ClientMetric::Label>, int> counts; // ordered: stable output
    for (auto& labels : row_labels(clients, client_labels))
        ++counts[std::move(labels)];
    MetricFamily family{"pgbouncer_client_connections",
                        "Number of client connections by database, user, application_name and "
                        "state",
                        MetricType::Gauge,
                        {}};
    for (const auto& [labels, count] : counts)
        family.metric.push_back(sample(MetricType::Gauge, count, labels));
    add_if_sampled(out, std::move(family));
}

} // namespace

std::vector<MetricFamily> exporter_families(const ConsoleTables& tables) {
    std::vector<MetricFamily> out;
    out.push_back({"pgbouncer_up",
                   "1: the console answered this scrape",
                   MetricType::Gauge,
                   {sample(MetricType::Gauge, 1)}});
    if (!tables.version.empty()) {
        out.push_back({"pgbouncer_version_info",
                       "The version SHOW VERSION reports, as a label",
                       MetricType::Gauge,
                       {sample(MetricType::Gauge, 1, {{"version", label_value(tables.version)}})}});
    }
    add_keyed(out, tables.lists, "list", "items", list_metrics);
    add_keyed(out, tables.config, "key", "value", config_metrics);
    add_columns(out, tables.databases, "databases", database_labels, database_metrics);
    add_columns(out, tables.stats_totals, "stats_totals", stats_labels, stats_metrics);
    add_columns(out, tables.pools, "pools", pool_labels, pool_metrics);
    add_client_counts(out, tables.clients);
    return out;
}

} // namespace proxy

#include "proxy/console_tables.hpp"

#include "proxy/console_rows.hpp"
#include "proxy/pool_limits.hpp"
#include "proxy/runtime.hpp"
#include "proxy/settings.hpp"

#include <map>
#include <set>

#include "pgmarina_version.hpp"

namespace proxy {
namespace {

std::vector<PoolSnapshot> pool_snapshots(Runtime& runtime) {
    std::vector<PoolSnapshot> snapshots;
    for (const auto& pool : runtime.pools.all())
        snapshots.push_back(pool->snapshot());
    return snapshots;
}

Table show_pools(Runtime& runtime) {
    Table table = make_table({"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
                              "cl_waiting_cancel_req", "sv_active", "sv_active_cancel",
                              "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
                              "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts"},
                             {"database", "user", "pool_mode", "load_balance_hosts"});
    const auto clients = runtime.sessions.snapshot();
    const Config& config = *runtime.config();
    for (const auto& [key, stats] : stats_by_key(pool_snapshots(runtime))) {
        std::int64_t active = 0;
        std::int64_t waiting = 0;
        for (const auto& client : clients) {
            if (client->pool != key) continue;
            (client->state.load() == ClientState::waiting ? waiting : active) += 1;
        }
        table.rows.push_back(
            {key.database, key.user, number(active), number(waiting), "0", "0",
             number(stats.sv_active), number(stats.sv_active_cancel),
             number(stats.sv_being_canceled), number(stats.sv_idle), number(stats.sv_used),
             number(stats.sv_tested), number(stats.sv_login), number(stats.maxwait),
             number(stats.maxwait_us), std::string(to_string(resolve_pool_mode(config, key))),
             load_balance_hosts(config, key.database)});
    }
    return table;
}

// Every database SHOW STATS reports: the configured ones and the console's.
std::set<std::string, std::less<>> stats_databases(const Config& config) {
    std::set<std::string, std::less<>> names{"pgbouncer"};
    for (const auto& [name, database] : config.databases)
        names.insert(name);
    return names;
}

// PgBouncer 1.25's counters (HEAD has added client_login_count since).
const std::vector<std::string> stats_fields = {"server_assignment_count",
                                               "xact_count",
                                               "query_count",
                                               "received",
                                               "sent",
                                               "xact_time",
                                               "query_time",
                                               "wait_time",
                                               "client_parse_count",
                                               "server_parse_count",
                                               "bind_count"};

std::vector<Cell> stats_cells(const TrafficTotals& t) {
    return {number(t.server_assignments), number(t.xacts),      number(t.queries),
            number(t.bytes_received),     number(t.bytes_sent), number(t.xact_time),
            number(t.query_time),         number(t.wait_time),  number(t.client_parses),
            number(t.server_parses),      number(t.binds)};
}

// SHOW STATS: totals then averages; STATS_TOTALS and STATS_AVERAGES: one of them.
enum class StatsPart { both, totals, averages };

std::string stats_column(StatsPart part, bool average, const std::string& field) {
    // PgBouncer's spellings: SHOW STATS says total_received and avg_recv; STATS_TOTALS says
    // bytes_received; STATS_AVERAGES keeps the avg_ prefix on the four newest counters only.
    const bool bytes = field == "received" || field == "sent";
    if (part == StatsPart::both) {
        if (average) return field == "received" ? "avg_recv" : "avg_" + field;
        return "total_" + field;
    }
    if (bytes) return "bytes_" + field;
    const bool newest =
        field == "client_parse_count" || field == "server_parse_count" || field == "bind_count";
    return part == StatsPart::averages && newest ? "avg_" + field : field;
}

Table show_stats(Runtime& runtime, StatsPart part) {
    std::vector<std::string> names{"database"};
    for (const bool average : {false, true}) {
        if (part == StatsPart::totals && average) continue;
        if (part == StatsPart::averages && !average) continue;
        for (const auto& field : stats_fields)
            names.push_back(stats_column(part, average, field));
    }
    // PgBouncer dropped total_requests in 1.8 (it became total_query_count); Debian's exporter
    // still reads it.
    const bool legacy = part == StatsPart::both && runtime.config()->settings.admin_legacy_columns;
    if (legacy) names.push_back("total_requests");
    Table table = make_table(names, {"database"});
    const auto totals = runtime.pools.traffic_by_database();
    const auto averages = runtime.pools.traffic_averages();
    const auto get = [](const auto& all, std::string_view name) {
        const auto found = all.find(name);
        return found == all.end() ? TrafficTotals{} : found->second;
    };
    for (const auto& name : stats_databases(*runtime.config())) {
        std::vector<Cell> row{name};
        if (part != StatsPart::averages) {
            for (auto& cell : stats_cells(get(totals, name)))
                row.push_back(std::move(cell));
        }
        if (part != StatsPart::totals) {
            for (auto& cell : stats_cells(get(averages, name)))
                row.push_back(std::move(cell));
        }
        if (legacy) row.push_back(number(get(totals, name).queries));
        table.rows.push_back(std::move(row));
    }
    return table;
}

// SHOW TOTALS: the SHOW STATS numbers summed over every database, one row per number.
Table show_totals(Runtime& runtime) {
    Table table = make_table({"name", "value"}, {"name"});
    TrafficTotals totals;
    TrafficTotals averages;
    for (const auto& [name, t] : runtime.pools.traffic_by_database())
        totals += t;
    for (const auto& [name, a] : runtime.pools.traffic_averages())
        averages += a;
    for (const bool average : {false, true}) {
        const auto cells = stats_cells(average ? averages : totals);
        for (std::size_t i = 0; i < stats_fields.size(); ++i) {
            table.rows.push_back(
                {stats_column(StatsPart::both, average, stats_fields[i]), cells[i]});
        }
    }
    return table;
}

Table show_databases(Runtime& runtime) {
    Table table =
        make_table({"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                    "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                    "max_connections", "current_connections", "max_client_connections",
                    "current_client_connections", "paused", "disabled"},
                   {"name", "host", "database", "force_user", "pool_mode", "load_balance_hosts"});
    const Config& config = *runtime.config();
    const auto clients = runtime.sessions.snapshot();
    const auto client_count = [&](std::string_view database) {
        std::int64_t count = 0;
        for (const auto& client : clients)
            count += client->database == database ? 1 : 0;
        return count;
    };
    const Settings& settings = config.settings;
    const auto topology = runtime.topology.load();
    for (const auto& [name, database] : config.databases) {
        const auto [current, max] = runtime.pools.database_connections(name);
        const Endpoint& host = shown_host(database, topology->find(name));
        table.rows.push_back(
            {name, host.host, number(host.port), database.dbname,
             database.user ? Cell(*database.user) : std::nullopt,
             number(database.pool_size.value_or(settings.default_pool_size)),
             number(database.min_pool_size.value_or(settings.min_pool_size)),
             number(database.reserve_pool_size.value_or(settings.reserve_pool_size)),
             number(seconds(settings.server_lifetime)),
             std::string(to_string(database.pool_mode.value_or(settings.pool_mode))),
             load_balance_hosts(config, name),
             number(database.max_db_connections.value_or(settings.max_db_connections)),
             number(current), "0", number(client_count(name)),
             number(runtime.switches.paused(name) ? 1 : 0),
             number(runtime.switches.disabled(name) ? 1 : 0)});
    }
    // The console itself, as PgBouncer lists it.
    table.rows.push_back({"pgbouncer", std::nullopt, number(listen_port(config.settings)),
                          "pgbouncer", "pgbouncer", "2", "0", "0", "0", "statement", std::nullopt,
                          "0", "0", "0", number(client_count("pgbouncer")), "0", "0"});
    // Called reserve_pool before PgBouncer 1.24; Debian's exporter still reads that name.
    if (settings.admin_legacy_columns) {
        table.columns.push_back({"reserve_pool", ColumnType::int8});
        const auto reserve = *table.column("reserve_pool_size");
        for (auto& row : table.rows)
            row.push_back(row[reserve]);
    }
    return table;
}

Table show_users(Runtime& runtime) {
    Table table = make_table({"name", "pool_size", "reserve_pool_size", "pool_mode",
                              "max_user_connections", "current_connections",
                              "max_user_client_connections", "current_client_connections"},
                             {"name", "pool_mode"});
    const Config& config = *runtime.config();
    const auto clients = runtime.sessions.snapshot();
    std::set<std::string, std::less<>> names;
    for (const auto& [name, user] : config.users)
        names.insert(name);
    for (const auto& pool : runtime.pools.all())
        names.insert(pool->key().user);
    for (const auto& client : clients)
        names.insert(client->user);
    for (const auto& name : names) {
        const auto user = config.users.find(name);
        const UserConfig none;
        const UserConfig& settings = user == config.users.end() ? none : user->second;
        std::int64_t client_count = 0;
        for (const auto& client : clients)
            client_count += client->user == name ? 1 : 0;
        const auto [current, max] = runtime.pools.user_connections(name);
        table.rows.push_back(
            {name, settings.pool_size ? Cell(number(*settings.pool_size)) : std::nullopt,
             settings.reserve_pool_size ? Cell(number(*settings.reserve_pool_size)) : std::nullopt,
             settings.pool_mode ? Cell(std::string(to_string(*settings.pool_mode))) : std::nullopt,
             number(settings.max_user_connections.value_or(config.settings.max_user_connections)),
             number(current), "0", number(client_count)});
    }
    return table;
}

Table show_config(Runtime& runtime) {
    Table table = make_table({"key", "value", "default", "changeable"},
                             {"key", "value", "default", "changeable"});
    const Settings defaults;
    // A password is shown as set or not, never itself (nor its length).
    const auto shown = [](const auto& key, const Settings& settings) {
        std::string value = plain_setting(key.format(settings));
        if (key.spec.secret && !value.empty()) value = "********";
        return value;
    };
    for (const auto& key : global_keys()) {
        table.rows.push_back({std::string(key.spec.name), shown(key, runtime.config()->settings),
                              shown(key, defaults),
                              key.spec.reload == Reload::restart ? "no" : "yes"});
    }
    return table;
}

Table show_lists(Runtime& runtime) {
    Table table = make_table({"list", "items"}, {"list"});
    const auto clients = runtime.sessions.snapshot();
    // A pool per (database, user), as SHOW POOLS lists them, whatever the hosts behind it.
    const auto pools = stats_by_key(pool_snapshots(runtime));
    std::set<std::string, std::less<>> users;
    std::int64_t servers = 0;
    for (const auto& [key, stats] : pools) {
        users.insert(key.user);
        servers += static_cast<std::int64_t>(stats.servers);
    }
    const auto logged_in = static_cast<std::int64_t>(clients.size());
    const std::int64_t logging_in = std::max<std::int64_t>(0, runtime.clients.load() - logged_in);
    const std::vector<std::pair<const char*, std::int64_t>> lists{
        {"databases", static_cast<std::int64_t>(runtime.config()->databases.size()) + 1},
        {"users", static_cast<std::int64_t>(users.size())},
        {"peers", 0},
        {"pools", static_cast<std::int64_t>(pools.size())},
        {"peer_pools", 0},
        {"free_clients", 0},
        {"used_clients", logged_in},
        {"login_clients", logging_in},
        {"free_servers", 0},
        {"used_servers", servers},
        {"dns_names", 0},
        {"dns_zones", 0},
        {"dns_queries", 0},
        {"dns_pending", 0}};
    for (const auto& [name, items] : lists)
        table.rows.push_back({name, number(items)});
    return table;
}

Table show_state(Runtime& runtime) {
    Table table = make_table({"key", "value"}, {"key", "value"});
    const auto yes_no = [](bool on) { return std::string(on ? "yes" : "no"); };
    table.rows.push_back(
        {"active", yes_no(!runtime.switches.all_paused() && !runtime.switches.suspended())});
    table.rows.push_back({"paused", yes_no(runtime.switches.all_paused())});
    table.rows.push_back({"suspended", yes_no(runtime.switches.suspended())});
    return table;
}

Table show_version() {
    Table table = make_table({"version"}, {"version"});
    table.rows.push_back({"pgmarina " PGMARINA_VERSION});
    return table;
}

} // namespace

ConsoleTables exporter_tables(Runtime& runtime) {
    return {show_databases(runtime),
            show_stats(runtime, StatsPart::totals),
            show_pools(runtime),
            show_lists(runtime),
            show_config(runtime),
            show_clients(runtime),
            show_version().rows.front().front().value_or("")};
}

std::optional<Table> show_table(Runtime& runtime, std::string_view subject) {
    if (subject == "POOLS") return show_pools(runtime);
    if (subject == "STATS") return show_stats(runtime, StatsPart::both);
    if (subject == "STATS_TOTALS") return show_stats(runtime, StatsPart::totals);
    if (subject == "STATS_AVERAGES") return show_stats(runtime, StatsPart::averages);
    if (subject == "TOTALS") return show_totals(runtime);
    if (subject == "CLIENTS") return show_clients(runtime);
    if (subject == "SERVERS") return show_servers(runtime);
    if (subject == "SOCKETS" || subject == "ACTIVE_SOCKETS") return show_sockets(runtime);
    if (subject == "DATABASES") return show_databases(runtime);
    if (subject == "USERS") return show_users(runtime);
    if (subject == "CONFIG") return show_config(runtime);
    if (subject == "LISTS") return show_lists(runtime);
    if (subject == "STATE") return show_state(runtime);
    if (subject == "VERSION") return show_version();
    if (subject == "HOSTS") return show_hosts(runtime);
    return std::nullopt;
}

} // namespace proxy

// SHOW CLIENTS, SERVERS, SOCKETS and HOSTS: one row per connection or host.
#include "proxy/console_rows.hpp"
#include "proxy/runtime.hpp"

#include <algorithm>

namespace proxy {
namespace {

const std::vector<std::string> connection_columns = {"type",
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
                                                     "id"};

const std::initializer_list<std::string_view> connection_text_columns = {
    "type", "user",       "database",        "replication",  "state",
    "addr", "local_addr", "connect_time",    "request_time", "ptr",
    "link", "tls",        "application_name"};

// SHOW SOCKETS adds PgBouncer's buffer positions. Ours are the framers', which belong to each
// session's thread; the console reports them as empty rather than read them across threads.
const std::vector<std::string> socket_columns = {
    "recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"};

// ptr and link: PgBouncer prints the address of the connection's struct. We print the names our
// log lines use ("C-17", "S-4"), which identify a connection just as well and can be grepped.
std::string client_name(std::uint64_t id) {
    return "C-" + std::to_string(id);
}
std::string server_name(std::uint64_t id) {
    return "S-" + std::to_string(id);
}

using SystemClock = std::chrono::system_clock;

SystemClock::time_point wall_time(pool::TimePoint at) {
    const auto ago = pool::Clock::now() - at;
    return SystemClock::now() - std::chrono::duration_cast<SystemClock::duration>(ago);
}

std::vector<std::vector<Cell>> client_rows(Runtime& runtime) {
    std::vector<std::vector<Cell>> rows;
    auto clients = runtime.sessions.snapshot();
    const auto now = SystemClock::now();
    for (const auto& client : clients) {
        const auto request = SystemClock::time_point(SystemClock::duration(client->request_time));
        const auto wait_since = client->wait_since.load();
        std::int64_t wait_s = 0;
        std::int64_t wait_us = 0;
        if (wait_since != 0 && client->state.load() == ClientState::waiting) {
            const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(
                now - SystemClock::time_point(SystemClock::duration(wait_since)));
            wait_s = waited.count() / 1'000'000;
            wait_us = waited.count() % 1'000'000;
        }
        const auto link = client->link.load();
        rows.push_back({"C",
                        client->user,
                        client->database,
                        "none",
                        std::string(to_string(client->state.load())),
                        client->remote.addr,
                        number(client->remote.port),
                        client->local.addr,
                        number(client->local.port),
                        timestamp(client->connect_time),
                        timestamp(client->request_time != 0 ? request : client->connect_time),
                        number(wait_s),
                        number(wait_us),
                        "0",
                        client_name(client->id),
                        link != 0 ? Cell(server_name(link)) : std::nullopt,
                        "0",
                        client->tls.empty() ? std::nullopt : Cell(client->tls),
                        client->application_name,
                        number(client->prepared_statements.load()),
                        number(client->id)});
    }
    return rows;
}

std::vector<std::vector<Cell>> server_rows(Runtime& runtime) {
    std::vector<std::vector<Cell>> rows;
    for (const auto& pool : runtime.pools.all()) {
        const PoolSnapshot snapshot = pool->snapshot();
        for (const ServerRow& server : snapshot.servers) {
            const auto id = static_cast<std::uint64_t>(server.view.id);
            const ServerFacts facts = server.facts.value_or(ServerFacts{});
            const bool known = server.facts.has_value();
            rows.push_back({"S",
                            snapshot.key.user,
                            snapshot.key.database,
                            "none",
                            std::string(pool::to_string(server.view.state)),
                            known ? Cell(facts.remote.address().to_string()) : std::nullopt,
                            number(known ? facts.remote.port() : 0),
                            known ? Cell(facts.local.address().to_string()) : std::nullopt,
                            number(known ? facts.local.port() : 0),
                            timestamp(wall_time(server.view.opened)),
                            timestamp(wall_time(server.view.last_used)),
                            "0",
                            "0",
                            number(server.view.close_needed ? 1 : 0),
                            server_name(id),
                            server.view.client
                                ? Cell(client_name(static_cast<std::uint64_t>(*server.view.client)))
                                : std::nullopt,
                            number(facts.process_id),
                            facts.tls.empty() ? std::nullopt : Cell(facts.tls),
                            facts.application_name,
                            number(facts.prepared_statements),
                            number(id)});
        }
    }
    return rows;
}

} // namespace

Table show_clients(Runtime& runtime) {
    Table table = make_table(connection_columns, connection_text_columns);
    table.rows = client_rows(runtime);
    return table;
}

Table show_servers(Runtime& runtime) {
    Table table = make_table(connection_columns, connection_text_columns);
    table.rows = server_rows(runtime);
    return table;
}

Table show_sockets(Runtime& runtime) {
    auto names = connection_columns;
    names.insert(names.end(), socket_columns.begin(), socket_columns.end());
    Table table = make_table(names, connection_text_columns);
    table.rows = client_rows(runtime);
    for (auto& row : server_rows(runtime))
        table.rows.push_back(std::move(row));
    for (auto& row : table.rows)
        row.resize(names.size(), "0");
    return table;
}

// One row per database and host, in the configuration's order, with what the failover watcher
// last saw of the host (see host_status) and the servers of every user's pool on it.
Table show_hosts(Runtime& runtime) {
    Table table = make_table({"database", "host", "port", "role", "health", "timeline", "lsn",
                              "lag_bytes", "lag_seconds", "last_probe_ms_ago", "error", "sv_active",
                              "sv_idle", "sv_used", "sv_tested", "sv_login"},
                             {"database", "host", "role", "health", "lsn", "lag_seconds", "error"});
    table.columns[*table.column("lag_seconds")].type = ColumnType::float8;
    const auto topology = runtime.topology.load();
    const auto now = routing::Clock::now();
    const auto pools = runtime.pools.all();
    for (const auto& [name, database] : runtime.config()->databases) {
        for (const Endpoint& host : database.hosts) {
            pool::Stats servers;
            for (const auto& pool : pools) {
                if (pool->key().database == name && pool->host() == host) {
                    add_pool_stats(servers, pool->snapshot().stats);
                }
            }
            std::vector<Cell> row{name, host.host, number(host.port)};
            for (auto& cell : host_status(topology->find(name), host.to_string(), now))
                row.push_back(std::move(cell));
            for (const std::size_t count : {servers.sv_active, servers.sv_idle, servers.sv_used,
                                            servers.sv_tested, servers.sv_login})
                row.push_back(number(count));
            table.rows.push_back(std::move(row));
        }
    }
    return table;
}

} // namespace proxy

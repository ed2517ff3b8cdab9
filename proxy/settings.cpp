#include "proxy/settings.hpp"

#include <array>
#include <chrono>
#include <numeric>

namespace proxy {

namespace {

constexpr std::int64_t micros(std::chrono::microseconds value) {
    return std::chrono::duration_cast<Duration>(value).count();
}

constexpr std::int64_t kib = 1024;
constexpr std::int64_t mib = 1024 * kib;

// Names, meanings and defaults are PgBouncer's (1.25) unless the description says otherwise.
// Limits not in PgBouncer reject values that cannot work rather than failing at runtime.
constexpr std::array global_table{
    key<&Settings::listen>(
        "listen",
        "Client TCP addresses \"addr:port\" (\"*\" = all, port 6432 if omitted): listen_addr + "
        "listen_port")
        .restart()
        .listen_address(6432),
    key<&Settings::unix_socket_dir>(
        "unix_socket_dir",
        "Directory of the Unix socket .s.PGSQL.PORT, PORT of the first listen address; \"\" "
        "disables it")
        .restart(),
    key<&Settings::workers>(
        "workers",
        "Threads, each with its own event loop and SO_REUSEPORT acceptor; 0 = one per CPU "
        "core")
        .restart()
        .at_most(256),
    key<&Settings::pool_mode>(
        "pool_mode",
        "When a server returns to its pool; transaction, not PgBouncer's session: we pool "
        "transactions"),
    key<&Settings::default_pool_size>(
        "default_pool_size",
        "Server connections per (database, user) pool unless the database or user sets "
        "pool_size"),
    key<&Settings::min_pool_size>(
        "min_pool_size",
        "Server connections each pool keeps open even when unused; at most the pool size"),
    key<&Settings::reserve_pool_size>(
        "reserve_pool_size", "Extra server connections a pool may open once a client has waited "
                             "reserve_pool_timeout"),
    key<&Settings::reserve_pool_timeout>(
        "reserve_pool_timeout",
        "How long a client waits before its pool may use the reserve (0 disables the reserve)"),
    key<&Settings::max_client_conn>("max_client_conn",
                                    "Client connections accepted in total; more are refused")
        .at_least(1),
    key<&Settings::max_db_connections>(
        "max_db_connections", "Server connections per database over all its pools (0 = no limit)"),
    key<&Settings::max_user_connections>(
        "max_user_connections", "Server connections per user over all its pools (0 = no limit)"),
    key<&Settings::auth_type>(
        "auth_type",
        "How clients authenticate; md5 switches to SCRAM for users whose secret is a SCRAM "
        "secret"),
    key<&Settings::auth_file>(
        "auth_file",
        "PgBouncer-format file of \"user\" \"password\" lines; relative to this file's "
        "directory"),
    key<&Settings::auth_hba_file>(
        "auth_hba_file",
        "pg_hba.conf-style rules, required when auth_type is hba; relative to this file's "
        "directory"),
    key<&Settings::auth_user>(
        "auth_user",
        "User that looks up the secrets of users not in [users] or auth_file, with auth_query"),
    key<&Settings::auth_query>(
        "auth_query",
        "Query returning (user name, secret) for $1; the default honours VALID UNTIL"),
    key<&Settings::auth_dbname>(
        "auth_dbname", "Database auth_query runs in; \"\" = the database the client asked for"),
    key<&Settings::client_tls_sslmode>(
        "client_tls_sslmode",
        "TLS toward clients: disable, allow, prefer, require; verify-ca, verify-full need a "
        "client cert"),
    key<&Settings::client_tls_key_file>("client_tls_key_file",
                                        "Private key pgmarina presents to clients (PEM)"),
    key<&Settings::client_tls_cert_file>("client_tls_cert_file",
                                         "Certificate pgmarina presents to clients (PEM)"),
    key<&Settings::client_tls_ca_file>(
        "client_tls_ca_file", "CA certificates that client certificates must chain to (PEM)"),
    key<&Settings::client_tls_protocols>(
        "client_tls_protocols",
        "TLS versions offered to clients: secure (1.2 and 1.3), tlsv1.2, tlsv1.3"),
    key<&Settings::client_tls_ciphers>(
        "client_tls_ciphers", "OpenSSL cipher list for TLS 1.2 clients; default = strong AEAD "
                              "ciphers with forward secrecy"),
    key<&Settings::server_tls_sslmode>(
        "server_tls_sslmode",
        "TLS toward PostgreSQL: disable, allow, prefer, require, verify-ca, verify-full (+ host "
        "name)"),
    key<&Settings::server_tls_ca_file>(
        "server_tls_ca_file", "CA certificates that servers' certificates must chain to (PEM)"),
    key<&Settings::server_tls_key_file>(
        "server_tls_key_file", "Private key for a client certificate sent to servers (PEM)"),
    key<&Settings::server_tls_cert_file>("server_tls_cert_file",
                                         "Client certificate sent to servers (PEM)"),
    key<&Settings::server_tls_protocols>(
        "server_tls_protocols", "TLS versions used toward servers: secure, tlsv1.2, tlsv1.3"),
    key<&Settings::server_tls_ciphers>(
        "server_tls_ciphers", "OpenSSL cipher list for TLS 1.2 toward servers; default as for "
                              "clients"),
    key<&Settings::admin_users>(
        "admin_users",
        "Users allowed every command on the admin console (databases pgbouncer and pgmarina)"),
    key<&Settings::stats_users>("stats_users",
                                "Users allowed the read-only SHOW commands on the admin console"),
    key<&Settings::admin_legacy_columns>("admin_legacy_columns",
                                         "pgmarina only: add the columns Debian's old exporter "
                                         "reads (total_requests, reserve_pool)"),
    key<&Settings::ignore_startup_parameters>(
        "ignore_startup_parameters",
        "Startup parameters accepted and ignored instead of refused, e.g. extra_float_digits"),
    key<&Settings::server_reset_query>(
        "server_reset_query",
        "Query that cleans a server for its next client; session mode only, see "
        "server_reset_query_always"),
    key<&Settings::server_reset_query_always>(
        "server_reset_query_always",
        "Run server_reset_query in every pool mode, not only in session mode"),
    key<&Settings::server_check_query>(
        "server_check_query",
        "Liveness query after server_check_delay idle; \"<empty>\" sends an empty query, \"\" "
        "disables"),
    key<&Settings::server_check_delay>(
        "server_check_delay",
        "How long a released server is reused without server_check_query (0: always check)"),
    key<&Settings::server_lifetime>(
        "server_lifetime",
        "Close an unused server connection open longer than this (0: use each connection "
        "once)"),
    key<&Settings::server_idle_timeout>(
        "server_idle_timeout", "Close a server connection idle longer than this (0 disables)"),
    key<&Settings::server_connect_timeout>(
        "server_connect_timeout",
        "Give up connecting and logging in to a server, or a check or reset query on it, after "
        "this long"),
    key<&Settings::server_login_retry>(
        "server_login_retry",
        "After a failed server login, wait this long before trying that server again"),
    key<&Settings::query_timeout>("query_timeout",
                                  "Cancel queries running longer than this (0 disables)"),
    key<&Settings::query_wait_timeout>(
        "query_wait_timeout",
        "Disconnect a client that has waited this long for a server (0 disables)"),
    key<&Settings::cancel_wait_timeout>(
        "cancel_wait_timeout",
        "Drop a cancel request that has waited this long for a server (0 disables)"),
    key<&Settings::client_idle_timeout>(
        "client_idle_timeout", "Close a client connection idle longer than this (0 disables)"),
    key<&Settings::client_login_timeout>(
        "client_login_timeout",
        "Close a client connection that has not logged in within this time (0 disables)"),
    key<&Settings::idle_transaction_timeout>(
        "idle_transaction_timeout",
        "Close a client idle inside a transaction longer than this (0 disables)"),
    key<&Settings::tcp_keepalive>("tcp_keepalive",
                                  "Enable TCP keepalive on client and server sockets"),
    key<&Settings::tcp_keepidle>("tcp_keepidle",
                                 "TCP_KEEPIDLE in seconds (0: the OS default)")
        .at_most(32767), // the kernel's MAX_TCP_KEEPIDLE
    key<&Settings::tcp_keepintvl>("tcp_keepintvl",
                                  "TCP_KEEPINTVL in seconds (0: the OS default)")
        .at_most(32767), // MAX_TCP_KEEPINTVL
    key<&Settings::tcp_keepcnt>(
        "tcp_keepcnt",
        "TCP_KEEPCNT, probes before the connection is dropped (0: the OS default)")
        .at_most(127), // MAX_TCP_KEEPCNT
    key<&Settings::max_prepared_statements>(
        "max_prepared_statements",
        "Protocol-level prepared statements kept per server connection (0 disables tracking)"),
    key<&Settings::max_packet_size>("max_packet_size",
                                    "Largest protocol message accepted from clients and servers")
        .at_least(kib)        // below 1kB even ordinary ErrorResponses would be refused
        .at_most(2147483647), // a message's length is an Int32
    key<&Settings::pkt_buf>("pkt_buf", "Read buffer per connection; messages may be larger")
        .restart()
        .at_least(kib)
        .at_most(16 * mib),
    key<&Settings::application_name_add_host>(
        "application_name_add_host",
        "Append the client's address and port to application_name at login"),
    key<&Settings::log_connections>("log_connections", "Log successful logins"),
    key<&Settings::log_disconnections>("log_disconnections",
                                       "Log disconnections with their reason"),
    key<&Settings::log_stats>(
        "log_stats", "Log a \"stats:\" line of rates and average times every stats_period"),
    key<&Settings::log_format>(
        "log_format",
        "pgmarina only: \"text\" lines as PgBouncer's, or \"json\", one object per line")
        .restart(),
    key<&Settings::stats_period>("stats_period",
                                 "Period over which SHOW STATS averages are computed")
        .at_least(micros(std::chrono::seconds{1})),
    key<&Settings::shutdown_timeout>(
        "shutdown_timeout",
        "pgmarina only: how long a graceful shutdown waits for clients before closing them "
        "(0: no limit)"),
    key<&Settings::health_check_user>(
        "health_check_user",
        "pgmarina only: user the failover watcher probes hosts as; \"\": no probes, first host "
        "primary"),
    key<&Settings::health_check_password>(
        "health_check_password",
        "pgmarina only: plain password of health_check_user (\"\": from auth_file or [users])")
        .secret(),
    key<&Settings::health_check_dbname>("health_check_dbname",
                                        "pgmarina only: database the watcher's probes log in to")
        .non_empty(),
    key<&Settings::health_check_interval>("health_check_interval",
                                          "pgmarina only: time between two probes of a host")
        .at_least(micros(std::chrono::milliseconds{100})),
    key<&Settings::health_check_timeout>("health_check_timeout",
                                         "pgmarina only: bound on a probe's login and on its query")
        .at_least(micros(std::chrono::milliseconds{100})),
    key<&Settings::peer_id>(
        "peer_id",
        "Id of this instance in [peers] (1-16383), carried in the cancel keys it issues; 0: no "
        "peering")
        .restart()
        .at_least(0)
        .at_most(16383),
};

constexpr std::array metrics_table{
    key<&MetricsSettings::listen>(
        "listen", "HTTP address for /metrics, /healthz and /readyz (port 9127 if omitted); \"\" "
                  "disables")
        .restart()
        .listen_address(9127),
};

constexpr std::array database_table{
    key<&DatabaseConfig::dbname>("dbname", "Database name on the servers")
        .non_empty()
        .default_doc("the section name"),
    key<&DatabaseConfig::hosts>(
        "hosts",
        "The cluster's servers, \"host:port\" (port 5432 if omitted); roles are discovered, "
        "not configured")
        .required()
        .non_empty()
        .server_address(5432)
        .default_doc("required"),
    key<&DatabaseConfig::routing>(
        "routing",
        "Where transactions run: all on the primary, read-only ones on replicas, or all on "
        "replicas"),
    key<&DatabaseConfig::max_replica_lag>(
        "max_replica_lag",
        "A replica further behind the primary than this much WAL gets no transactions"),
    key<&DatabaseConfig::max_replica_lag_time>(
        "max_replica_lag_time",
        "A replica whose replay is this far behind in time gets no transactions (0: no limit)"),
    key<&DatabaseConfig::read_consistency>(
        "read_consistency",
        "After a client's write, its reads go to replicas past it (lsn), to the primary, or "
        "anywhere"),
    key<&DatabaseConfig::load_balance>("load_balance", "How reads spread over usable replicas"),
    key<&DatabaseConfig::reads_fall_back_to_primary>(
        "reads_fall_back_to_primary",
        "With no usable replica, reads run on the primary (else they wait for a replica)"),
    key<&DatabaseConfig::read_only_functions>(
        "read_only_functions",
        "Functions besides the built-in allowlist that a replica may run in read_write_split"),
    key<&DatabaseConfig::pool_size>("pool_size", "Server connections per pool of this database")
        .default_doc("[pgmarina] default_pool_size"),
    key<&DatabaseConfig::min_pool_size>("min_pool_size",
                                        "Server connections each pool of this database keeps open")
        .default_doc("[pgmarina] min_pool_size"),
    key<&DatabaseConfig::reserve_pool_size>("reserve_pool_size",
                                            "Reserve connections per pool of this database")
        .default_doc("[pgmarina] reserve_pool_size"),
    key<&DatabaseConfig::pool_mode>("pool_mode", "Pool mode for this database")
        .default_doc("[pgmarina] pool_mode"),
    key<&DatabaseConfig::max_db_connections>(
        "max_db_connections",
        "Server connections to this database over all its pools (0 = no limit)")
        .default_doc("[pgmarina] max_db_connections"),
    key<&DatabaseConfig::user>(
        "user", "Log in to the servers as this user whatever the client's user (PgBouncer's "
                "force_user)")
        .non_empty()
        .default_doc("the client's user"),
    key<&DatabaseConfig::password>("password", "Password for user; only allowed together with user")
        .default_doc("from auth_file or [users]"),
    key<&DatabaseConfig::auth_user>("auth_user",
                                    "User that runs auth_query for this database's unknown users")
        .non_empty()
        .default_doc("[pgmarina] auth_user"),
};

constexpr std::array user_table{
    key<&UserConfig::password>(
        "password", "Plain password, md5 hash or SCRAM secret, as an auth_file line would hold")
        .default_doc("from auth_file"),
    key<&UserConfig::pool_size>(
        "pool_size", "Server connections per pool of this user; wins over the database's")
        .default_doc("the database's pool size"),
    key<&UserConfig::reserve_pool_size>(
        "reserve_pool_size", "Reserve connections per pool of this user; wins over the database's")
        .default_doc("the database's reserve"),
    key<&UserConfig::pool_mode>("pool_mode", "Pool mode for this user; wins over the database's")
        .default_doc("the database's pool mode"),
    key<&UserConfig::max_user_connections>(
        "max_user_connections", "Server connections of this user over all pools (0 = no limit)")
        .default_doc("[pgmarina] max_user_connections"),
};

constexpr std::array peer_table{
    key<&PeerConfig::host>("host",
                           "The instance's own address, \"host:port\" (port 6432 if omitted)")
        .required()
        .server_address(6432)
        .default_doc("required"),
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), std::size_t{0});
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
            diagonal = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
        }
    }
    return row[b.size()];
}

// Table cells: '|' would end the cell and '<' could open an HTML tag ("<empty>"). Code spans
// show "&lt;" literally, so they escape only the '|'.
std::string escape_cell(std::string_view text, bool code) {
    std::string out;
    for (char c : text) {
        if (c == '|') {
            out += "\\|";
        } else if (c == '<' && !code) {
            out += "&lt;";
        } else {
            out += c;
        }
    }
    return code ? "`" + out + "`" : out;
}

template <class S>
void append_section(std::string& out, std::string_view heading, std::string_view intro,
                    std::span<const KeyInfo<S>> keys) {
    const S defaults{};
    out += "### `" + std::string(heading) + "`\n\n" + std::string(intro) + "\n\n";
    out += "| key | type | default | reload | description |\n";
    out += "|---|---|---|---|---|\n";
    for (const KeyInfo<S>& info : keys) {
        std::string default_text = info.spec.default_doc.empty()
                                       ? escape_cell(info.format(defaults), true)
                                       : escape_cell(info.spec.default_doc, false);
        out += "| `" + std::string(info.spec.name) + "` | " +
               escape_cell(info.type(info.spec), false) + " | " + default_text + " | " +
               (info.spec.reload == Reload::online ? "yes" : "restart") + " | " +
               escape_cell(info.spec.description, false) + " |\n";
    }
    out += "\n";
}

} // namespace

std::span<const KeyInfo<Settings>> global_keys() {
    return global_table;
}

std::span<const KeyInfo<MetricsSettings>> metrics_keys() {
    return metrics_table;
}

std::span<const KeyInfo<DatabaseConfig>> database_keys() {
    return database_table;
}

std::span<const KeyInfo<UserConfig>> user_keys() {
    return user_table;
}

std::span<const KeyInfo<PeerConfig>> peer_keys() {
    return peer_table;
}

std::string unknown_key_message(std::string_view key, std::string_view where,
                                std::span<const std::string_view> known) {
    std::string message = "unknown key '" + std::string(key) + "' " + std::string(where);
    if (key == "listen_addr" || key == "listen_port") {
        return message + "; PgBouncer's listen_addr and listen_port are one key here: "
                         "listen = [\"addr:port\"]";
    }
    // A likely typo: at most two edits, and at most one per three characters of the name.
    std::string_view best;
    std::size_t best_distance = std::min<std::size_t>(3, key.size() / 3 + 1);
    for (std::string_view name : known) {
        std::size_t distance = edit_distance(key, name);
        if (distance < best_distance) {
            best = name;
            best_distance = distance;
        }
    }
    if (!best.empty()) {
        message += "; did you mean '" + std::string(best) + "'?";
    }
    return message;
}

std::string settings_reference_markdown() {
    std::string out = "<!-- Generated by `pgmarina --print-settings` from proxy/settings.cpp; "
                      "edit that table, not this text. -->\n\n";
    append_section<Settings>(
        out, "[pgmarina]",
        "Process-wide settings. Names, meanings and defaults are PgBouncer's unless the "
        "description says otherwise. A duration is a number of seconds (`5`, `0.5`) or a string "
        "with a unit: `\"500ms\"`, `\"30s\"`, `\"5min\"`, `\"1h\"` (us, ms, s, min, h, d). A size "
        "is a number of bytes or a string with a unit: `\"64kB\"`, `\"1MB\"` (B, kB, MB, GB, TB; "
        "powers of 1024). Keys marked `restart` keep their running value on RELOAD.",
        global_keys());
    append_section<MetricsSettings>(
        out, "[metrics]", "The HTTP endpoint for Prometheus and health checks.", metrics_keys());
    append_section<DatabaseConfig>(
        out, "[databases.<name>]",
        "One table per database that clients may connect to. The names `pgbouncer` and `pgmarina` "
        "are the admin console. Keys left out inherit the setting named in the default column.",
        database_keys());
    append_section<UserConfig>(
        out, "[users.<name>]",
        "Optional per-user settings, which win over the database's. A user without a password "
        "here is looked up in auth_file.",
        user_keys());
    append_section<PeerConfig>(
        out, "[peers.<peer_id>]",
        "The pgmarina instances sharing clients with this one (behind one Service or load "
        "balancer), each named by its peer_id. A CancelRequest that reaches the wrong instance is "
        "forwarded to the one that issued the key, once. The instance's own entry is ignored, so "
        "every instance can read the same list.",
        peer_keys());
    out.pop_back(); // one newline at the end, not a blank line
    return out;
}

} // namespace proxy

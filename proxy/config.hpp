// pgmarina's configuration: a TOML file turned into one validated, immutable `Config`.
//
// Every value a running proxy reads comes from here with its default already applied, so no
// other layer carries a fallback of its own. Per-database and per-user values that may be left
// out are `std::optional`: unset means "inherit the global setting", which is a different thing
// from "set to the global's current value" once RELOAD changes the global.
//
// Precedence for pool settings follows PgBouncer: [users.<name>] over [databases.<name>] over
// [pgmarina].
//
// Thread safety: a `Config` is never modified after `load_config*` returns it. Readers share it
// through `std::shared_ptr<const Config>`; RELOAD builds a new one and swaps the pointer.
#pragma once

#include "routing/router.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

// PgBouncer keeps timeouts in microseconds (usec_t); so do we, so that a fractional number of
// seconds such as `reserve_pool_timeout = 0.5` round-trips exactly.
using Duration = std::chrono::microseconds;

// A byte count. Its own type so that a size and a plain count cannot be mixed up, and so the
// settings table can tell which keys accept "64kB"-style units.
struct ByteSize {
    std::uint64_t bytes = 0;

    friend bool operator==(const ByteSize&, const ByteSize&) = default;
};

// A "host:port" pair. IPv6 literals are written "[::1]:5432" in the file; `host` holds them
// without brackets.
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;

    // "host:port", with brackets around an IPv6 literal.
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// When a server connection goes back to its pool (PgBouncer's pool_mode, same names).
enum class PoolMode {
    session,     // when the client disconnects
    transaction, // after each transaction (ReadyForQuery 'I')
    statement,   // after each statement; multi-statement transactions are refused
};

// How clients authenticate to the proxy (PgBouncer's auth_type values that we support).
enum class AuthType {
    scram_sha_256, // "scram-sha-256"
    md5,           // md5, or SCRAM when the stored secret is a SCRAM secret (as PgBouncer)
    plain,         // clear-text password; only sensible over TLS
    trust,         // no password; the user must still be known
    cert,          // TLS client certificate, user name from its CommonName
    hba,           // per-connection method from auth_hba_file
};

// Whether and how strictly a connection is encrypted (libpq's sslmode names, as PgBouncer's
// client_tls_sslmode and server_tls_sslmode).
enum class TlsMode {
    disable,     // never TLS
    allow,       // TLS when the other side asks for it or offers it
    prefer,      // the same as allow for us: TLS when it can be had
    require,     // TLS or no connection; certificates are not checked
    verify_ca,   // TLS with a certificate signed by the configured CA
    verify_full, // as verify_ca, and toward servers the host name must match the certificate
};

// Which backends of a database serve a client's transactions, and how reads spread over
// replicas (routing/router.hpp).
using Routing = routing::Mode;
using LoadBalance = routing::Balance;

// After a client's write, where its reads may go (a database's read_consistency).
enum class ReadConsistency {
    lsn,    // replicas that replayed past the primary's WAL position at the write, else primary
    sticky, // the primary, for the rest of the client's connection
    none,   // any usable replica at once (reads may miss the client's own writes)
};

[[nodiscard]] std::string_view to_string(PoolMode mode);
[[nodiscard]] std::string_view to_string(AuthType type);
[[nodiscard]] std::string_view to_string(Routing routing);
[[nodiscard]] std::string_view to_string(LoadBalance balance);
[[nodiscard]] std::string_view to_string(ReadConsistency consistency);
[[nodiscard]] std::string_view to_string(TlsMode mode);

// [pgmarina]: process-wide settings. The defaults here are the documented defaults; the table in
// settings.cpp maps each field to its TOML key, description and limits.
struct Settings {
    std::vector<Endpoint> listen{Endpoint{"127.0.0.1", 6432}};
    std::string unix_socket_dir = "/tmp";
    int workers = 0;
    PoolMode pool_mode = PoolMode::transaction;
    int default_pool_size = 20;
    int min_pool_size = 0;
    int reserve_pool_size = 0;
    Duration reserve_pool_timeout = std::chrono::seconds{5};
    int max_client_conn = 100;
    int max_db_connections = 0;
    int max_user_connections = 0;
    AuthType auth_type = AuthType::md5;
    std::string auth_file;
    std::string auth_hba_file;
    std::string auth_user;
    std::string auth_query = "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE "
                             "rolpassword END FROM pg_authid WHERE rolname = $1 AND rolcanlogin";
    std::string auth_dbname;
    TlsMode client_tls_sslmode = TlsMode::disable;
    std::string client_tls_key_file;
    std::string client_tls_cert_file;
    std::string client_tls_ca_file;
    std::string client_tls_protocols = "secure";
    std::string client_tls_ciphers = "default";
    TlsMode server_tls_sslmode = TlsMode::prefer;
    std::string server_tls_ca_file;
    std::string server_tls_key_file;
    std::string server_tls_cert_file;
    std::string server_tls_protocols = "secure";
    std::string server_tls_ciphers = "default";
    std::vector<std::string> admin_users;
    std::vector<std::string> stats_users;
    bool admin_legacy_columns = false;
    std::vector<std::string> ignore_startup_parameters;
    std::string server_reset_query = "DISCARD ALL";
    bool server_reset_query_always = false;
    std::string server_check_query = "<empty>";
    Duration server_check_delay = std::chrono::seconds{30};
    Duration server_lifetime = std::chrono::seconds{3600};
    Duration server_idle_timeout = std::chrono::seconds{600};
    Duration server_connect_timeout = std::chrono::seconds{15};
    Duration server_login_retry = std::chrono::seconds{15};
    Duration query_timeout = std::chrono::seconds{0};
    Duration query_wait_timeout = std::chrono::seconds{120};
    Duration cancel_wait_timeout = std::chrono::seconds{10};
    Duration client_idle_timeout = std::chrono::seconds{0};
    Duration client_login_timeout = std::chrono::seconds{60};
    Duration idle_transaction_timeout = std::chrono::seconds{0};
    bool tcp_keepalive = true;
    int tcp_keepidle = 0;
    int tcp_keepintvl = 0;
    int tcp_keepcnt = 0;
    int max_prepared_statements = 200;
    ByteSize max_packet_size{2147483647};
    ByteSize pkt_buf{4096};
    bool application_name_add_host = false;
    bool log_connections = true;
    bool log_disconnections = true;
    bool log_stats = true;           // the periodic "stats:" line, every stats_period
    std::string log_format = "text"; // "text" or "json" (one object per line)
    Duration stats_period = std::chrono::seconds{60};
    Duration shutdown_timeout = std::chrono::seconds{30};
    // The failover watcher (routing/watcher.hpp); with no health_check_user, hosts are not
    // probed and a database's first host is taken to be its primary, the others its replicas.
    std::string health_check_user;
    std::string health_check_password; // plain; "": from auth_file or [users]
    std::string health_check_dbname = "postgres";
    Duration health_check_interval = std::chrono::seconds{1};
    Duration health_check_timeout = std::chrono::seconds{2};
    // This instance's id among its [peers] (cancel_peering.hpp); 0: no peering.
    int peer_id = 0;

    friend bool operator==(const Settings&, const Settings&) = default;
};

// [metrics]: the HTTP endpoint for /metrics, /healthz and /readyz.
struct MetricsSettings {
    std::optional<Endpoint> listen = Endpoint{"0.0.0.0", 9127}; // nullopt: no HTTP endpoint

    friend bool operator==(const MetricsSettings&, const MetricsSettings&) = default;
};

// [databases.<name>]: a database clients can connect to, and the cluster behind it.
struct DatabaseConfig {
    std::string dbname;          // name on the server; the section name when not given
    std::vector<Endpoint> hosts; // never empty; roles are discovered, not configured
    Routing routing = Routing::primary_only;
    ByteSize max_replica_lag{1024 * 1024}; // WAL bytes a replica may lag and still be used
    Duration max_replica_lag_time{0};      // replay delay a replica may have; 0: no limit
    ReadConsistency read_consistency = ReadConsistency::lsn;
    LoadBalance load_balance = LoadBalance::round_robin;
    bool reads_fall_back_to_primary = true;
    std::vector<std::string> read_only_functions; // more functions classify() lets replicas run
    std::optional<int> pool_size;
    std::optional<int> min_pool_size;
    std::optional<int> reserve_pool_size;
    std::optional<PoolMode> pool_mode;
    std::optional<int> max_db_connections;
    std::optional<std::string> user;      // force_user: every pool of this database logs in as it
    std::optional<std::string> password;  // password of `user`; only valid together with it
    std::optional<std::string> auth_user; // looks up unknown users' secrets with auth_query

    friend bool operator==(const DatabaseConfig&, const DatabaseConfig&) = default;
};

// The host a database's primary is taken to be on, for its pools and its auth_query: the first
// one, until the failover watcher says which host is the primary.
[[nodiscard]] inline const Endpoint& primary_host(const DatabaseConfig& database) {
    return database.hosts.front();
}

// [users.<name>]: per-user overrides, and optionally the user's password.
struct UserConfig {
    std::optional<std::string> password; // plain, "md5…" or "SCRAM-SHA-256$…" as in auth_file
    std::optional<int> pool_size;
    std::optional<int> reserve_pool_size;
    std::optional<PoolMode> pool_mode;
    std::optional<int> max_user_connections;

    friend bool operator==(const UserConfig&, const UserConfig&) = default;
};

// [peers.<peer_id>]: another pgmarina instance behind the same address, to which CancelRequests
// for its clients are forwarded (cancel_peering.hpp).
struct PeerConfig {
    Endpoint host;

    friend bool operator==(const PeerConfig&, const PeerConfig&) = default;
};

struct Config {
    std::filesystem::path source; // the file it was read from; empty for the built-in defaults
    Settings settings;
    MetricsSettings metrics;
    std::map<std::string, DatabaseConfig, std::less<>> databases;
    std::map<std::string, UserConfig, std::less<>> users;
    std::map<int, Endpoint> peers; // by peer_id

    friend bool operator==(const Config&, const Config&) = default;
};

// One problem in a configuration file. `line` and `column` are 1-based; both are 0 when the
// problem concerns the file as a whole (for example, it cannot be read).
struct ConfigError {
    std::string origin;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::string message;

    // "origin:line:column: message", or "origin: message" without a position.
    [[nodiscard]] std::string to_string() const;
};

// The outcome of loading: a configuration, or every problem found (never both, never neither).
class [[nodiscard]] LoadResult {
public:
    explicit LoadResult(std::shared_ptr<const Config> config);
    explicit LoadResult(std::vector<ConfigError> errors);

    [[nodiscard]] bool ok() const noexcept { return config_ != nullptr; }
    explicit operator bool() const noexcept { return ok(); }

    // Precondition: ok().
    [[nodiscard]] const std::shared_ptr<const Config>& config() const noexcept { return config_; }
    // Empty when ok(). Sorted by position in the file.
    [[nodiscard]] const std::vector<ConfigError>& errors() const noexcept { return errors_; }

private:
    std::shared_ptr<const Config> config_;
    std::vector<ConfigError> errors_;
};

// The whole text of a file the configuration names (itself, auth_file, auth_hba_file), or why
// it cannot be read, as an error about the file.
[[nodiscard]] boost::system::result<std::string, ConfigError>
read_config_file(const std::filesystem::path& path);

// Reads and validates a configuration file. Relative paths inside it (auth_file, auth_hba_file)
// are resolved against the file's directory. Never throws on bad input.
[[nodiscard]] LoadResult load_config(const std::filesystem::path& path);

// Validates TOML text; `origin` names it in error messages and becomes `Config::source`.
// Relative paths inside it are resolved against the directory part of `origin`.
[[nodiscard]] LoadResult load_config_string(std::string_view toml, std::string_view origin);

// The port the Unix socket is named after (.s.PGSQL.<port>): the first listen address's, as
// PgBouncer's listen_port.
[[nodiscard]] std::uint16_t listen_port(const Settings& settings);

// The admin console's virtual databases, "pgbouncer" (so existing scripts and exporters work) and
// "pgmarina", unless the configuration defines a real database of that name.
[[nodiscard]] bool is_admin_database(const Config& config, std::string_view name);

// Every setting at its default and no databases: what pgmarina runs without -c.
[[nodiscard]] std::shared_ptr<const Config> default_config();

// The settings reference as Markdown (one table per section), generated from the settings
// tables so that the README cannot drift from the code. `pgmarina --print-settings` prints it.
[[nodiscard]] std::string settings_reference_markdown();

} // namespace proxy

#pragma once

// A real PostgreSQL cluster for integration tests: a primary (node 0) and streaming hot-standby
// replicas (nodes 1..N) on free loopback ports, in a fresh directory under /dev/shm (or the
// temporary directory when /dev/shm is small). All the cluster logic lives in
// tests/fixture/pg-cluster (see its --help); this class runs that script, whose path comes from
// the PG_CLUSTER environment variable (set by meson test and meson devenv).
//
// Teardown never depends on this process ending well: before starting the cluster the
// constructor spawns `pg-cluster guard DIR` in its own session, reading a pipe whose write end
// only this process holds. The pipe closes when the PgCluster is destroyed, and also when the
// process crashes or is killed with SIGKILL; either way the guard destroys the cluster. The
// destructor waits for the guard, so the cluster is gone when it returns.
//
// Thread safety: none; use a PgCluster from one thread.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace support {

struct PgClusterOptions {
    int replicas = 2; // 0 to 9
};

enum class StopMode {
    fast,      // clean shutdown: clients are disconnected, a shutdown checkpoint is written
    immediate, // a crash as far as PostgreSQL is concerned: the next start runs crash recovery
};

class PgCluster {
public:
    // Why no cluster can start here (PG_CLUSTER unset, PostgreSQL binaries missing...), or
    // nullopt if one can.
    [[nodiscard]] static std::optional<std::string> unavailable_reason();

    // Starts the cluster; throws std::runtime_error (after tearing down) if it does not come up.
    explicit PgCluster(PgClusterOptions options = {});
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;
    // Returns once the guard has destroyed the cluster.
    ~PgCluster() = default;

    [[nodiscard]] int node_count() const;
    [[nodiscard]] const std::string& host() const;
    [[nodiscard]] int port(int node) const;
    // The password of a user the script creates: "postgres" (superuser), "scram_user",
    // "md5_user", "plain_user" (pg_hba method password). Throws std::invalid_argument for other
    // users.
    [[nodiscard]] const std::string& password(std::string_view user) const;
    // A libpq conninfo for node over TCP, with the user's password.
    [[nodiscard]] std::string conninfo(int node, std::string_view user = "postgres",
                                       std::string_view dbname = "postgres") const;
    // The cluster's directory; node K logs to dir() / "nodeK/postgres.log".
    [[nodiscard]] const std::filesystem::path& dir() const;

    // Node operations; each throws std::runtime_error if pg-cluster fails (its stderr, which
    // says why, goes to this process's stderr).
    void stop(int node, StopMode mode = StopMode::fast);
    void start(int node);
    void restart(int node, StopMode mode = StopMode::fast);
    void promote(int node);
    // Rebuilds node as a fresh standby streaming from upstream (pg-cluster follow).
    void follow(int node, int upstream);

private:
    // Owns the guard process and the write end of its pipe; destroying it destroys the cluster.
    class Guard {
    public:
        Guard(const std::string& script, const std::filesystem::path& dir);
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard();

    private:
        pid_t pid_ = -1;
        int write_fd_ = -1;
    };

    void run(const std::vector<std::string>& args) const;
    [[nodiscard]] const std::string& env(const std::string& key) const;
    void check_node(int node) const;
    [[nodiscard]] std::string node_name(int node) const;

    std::string script_;
    std::filesystem::path dir_;
    Guard guard_;
    // DIR/cluster.env as written by pg-cluster start.
    std::map<std::string, std::string> env_;
};

} // namespace support

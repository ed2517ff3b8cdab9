#pragma once

// A real Patroni cluster for integration tests: one etcd and three Patroni nodes running
// PostgreSQL 15 on free loopback ports, in a fresh directory under /dev/shm (or the temporary
// directory when /dev/shm is small). All the cluster logic lives in tests/fixture/patroni-cluster
// (see its --help); this class runs that script, whose path comes from the PATRONI_CLUSTER
// environment variable (set by meson test and meson devenv).
//
// Teardown as with PgCluster: before starting the cluster, the constructor runs
// `patroni-cluster guard DIR` in its own session on a pipe whose write end only this process
// holds. The pipe closes when the PatroniCluster is destroyed, and also when the process crashes
// or is killed with SIGKILL; either way the guard destroys the cluster. The destructor waits for
// the guard, so the cluster is gone when it returns.
//
// Thread safety: none; use a PatroniCluster from one thread.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace support {

class PatroniCluster {
public:
    static constexpr int node_count = 3;

    // Why no cluster can start here (PATRONI_CLUSTER unset, Patroni, etcd or PostgreSQL
    // missing...), or nullopt if one can.
    [[nodiscard]] static std::optional<std::string> unavailable_reason();

    // Starts the cluster and returns once a leader has two streaming replicas; throws
    // std::runtime_error with the script's output (after tearing down) if it does not come up.
    PatroniCluster();
    PatroniCluster(const PatroniCluster&) = delete;
    PatroniCluster& operator=(const PatroniCluster&) = delete;
    // Returns once the guard has destroyed the cluster.
    ~PatroniCluster() = default;

    [[nodiscard]] const std::string& host() const;
    // The PostgreSQL port of node 0, 1 or 2.
    [[nodiscard]] int port(int node) const;
    // The node whose PostgreSQL listens on port, or nullopt.
    [[nodiscard]] std::optional<int> node_at(int port) const;
    // The password of "postgres" (superuser) or "scram_user" (owner of database app); throws
    // std::invalid_argument for other users.
    [[nodiscard]] const std::string& password(std::string_view user) const;
    // A libpq conninfo for node over TCP, with the user's password.
    [[nodiscard]] std::string conninfo(int node, std::string_view user = "postgres",
                                       std::string_view dbname = "postgres") const;
    // Patroni's ttl: how long the leader key outlives its holder's last renewal.
    [[nodiscard]] std::chrono::seconds ttl() const;
    [[nodiscard]] const std::filesystem::path& dir() const;

    // The node whose Patroni holds the leader key now, per its REST API; nullopt while no node
    // does, or more than one says so.
    [[nodiscard]] std::optional<int> leader() const;
    // patronictl list, for test messages.
    [[nodiscard]] std::string status() const;
    // SIGKILLs node's postmaster; Patroni stays up (patroni-cluster kill-postgres). Throws
    // std::runtime_error if that fails.
    void kill_postgres(int node);

private:
    // Owns the guard process and the write end of its pipe; destroying it destroys the cluster.
    class Guard {
    public:
        Guard(const std::string& script, const std::filesystem::path& dir);
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard();

    private:
        std::FILE* pipe_ = nullptr;
    };

    // Runs the script with args; throws std::runtime_error with its output if it fails.
    void run(const std::string& args) const;
    [[nodiscard]] const std::string& env(const std::string& key) const;
    void check_node(int node) const;

    std::string script_;
    std::filesystem::path dir_;
    Guard guard_;
    // DIR/cluster.env as written by patroni-cluster start.
    std::map<std::string, std::string> env_;
};

} // namespace support

#pragma once

// Probes every host of every database over its own libpq connection (never a pool's), on an
// Asio executor, through libpq's non-blocking API (design.md: routing::Watcher). Each probe asks
// pg_is_in_recovery(), the timeline, the WAL position (current on a primary, replayed on a
// replica) and the replay delay, bounded by a timeout; the results go to a listener, which
// builds the Topology.
// Privileges: a role with pg_monitor, no superuser (without it, replica timelines can lag).
//
// Thread safety: run() and the listener run on the executor given to the constructor (one
// thread at a time). probe_now() and reconfigure() may be called from any thread.

#include "routing/topology.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace routing {

struct WatchedHost {
    std::string name; // "host:port", HostState::name
    std::string host; // a name or an IP address literal (no brackets)
    std::uint16_t port = 5432;

    friend bool operator==(const WatchedHost&, const WatchedHost&) = default;
};

struct WatcherSettings {
    std::chrono::milliseconds interval{1000}; // between the starts of two probes of a host
    std::chrono::milliseconds timeout{2000};  // bounds a login, and a probe query
    std::string user;
    std::string password; // empty: none (trust, or a .pgpass)
    std::string dbname = "postgres";
    std::string sslmode = "prefer"; // libpq's sslmode
    std::string sslrootcert;        // CA file for sslmode verify-ca and verify-full

    friend bool operator==(const WatcherSettings&, const WatcherSettings&) = default;
};

class Watcher {
public:
    // Called after every probe with the state of every host (in the order of `hosts`).
    using Listener = std::function<void(const std::vector<HostState>& hosts)>;

    Watcher(boost::asio::any_io_executor executor, WatcherSettings settings,
            std::vector<WatchedHost> hosts, Listener listener);
    ~Watcher();
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    // Probes every host every interval until cancelled (the owner co_spawns it with a
    // cancellation slot, or destroys the io_context). A host's connection is kept between
    // probes and opened again after a failure.
    [[nodiscard]] boost::asio::awaitable<void> run();

    // A passive hint (a server reported in_hot_standby, a 25006 error, a refused or dropped
    // server connection): the host's next probe starts now rather than at its interval.
    // Unknown names are ignored.
    void probe_now(std::string_view host_name);

    // RELOAD: new hosts are probed from now on, removed ones no more; hosts kept keep their
    // state and their connection unless the settings changed.
    void reconfigure(WatcherSettings settings, std::vector<WatchedHost> hosts);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace routing

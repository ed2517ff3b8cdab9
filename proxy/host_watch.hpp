// Keeps Runtime::topology in step with the hosts: the failover watcher's probes (on a thread of
// its own, off the workers) when health_check_user is set, the configuration's order otherwise
// (first host primary). Every publication also closes the pooled servers of a host that went
// down or changed role, since they are dead or serve the wrong role.
//
// Thread safety: every member may be called from any thread; publications are serialized by
// one mutex.
#pragma once

#include "proxy/asio.hpp"
#include "proxy/auth_file.hpp"
#include "proxy/config.hpp"
#include "routing/topology.hpp"
#include "routing/watcher.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace proxy {

class Metrics;
class Pools;

class HostWatch {
public:
    // Publishes the topology of `config` at once; starts probing when it asks for a watcher.
    HostWatch(const std::shared_ptr<const Config>& config, const AuthUsers& users,
              routing::TopologyCell& topology, Pools& pools, Metrics& metrics);
    ~HostWatch();
    HostWatch(const HostWatch&) = delete;
    HostWatch& operator=(const HostWatch&) = delete;

    // RELOAD: the new hosts and watcher settings.
    void reconfigure(const std::shared_ptr<const Config>& config, const AuthUsers& users);

    // A passive hint from a session (a server reported in_hot_standby, a 25006 error, a failed
    // login or a dropped connection): probe `host` now. Nothing without a watcher.
    void probe_now(std::string_view host);
    // Hosts are probed (health_check_user is set): their roles can change.
    [[nodiscard]] bool watching() const noexcept {
        return watching_.load(std::memory_order_relaxed);
    }

private:
    void publish(const std::vector<routing::HostState>& states);
    // Under mutex_: the watcher for config_, started on first need.
    void watch(const AuthUsers& users);

    routing::TopologyCell& topology_;
    Pools& pools_;
    Metrics& metrics_;

    std::mutex mutex_;
    std::shared_ptr<const Config> config_;
    std::vector<routing::HostState> states_; // the watcher's last report
    std::atomic<bool> watching_{false};      // config_ has a health_check_user

    asio::io_context io_;
    std::unique_ptr<routing::Watcher> watcher_;
    std::thread thread_;
};

} // namespace proxy

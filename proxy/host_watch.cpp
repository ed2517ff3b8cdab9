#include "proxy/host_watch.hpp"

#include "proxy/log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/pools.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

namespace proxy {
namespace {

// Every host of every database once: an alias database (app_ro) shares its hosts with app.
std::vector<routing::WatchedHost> watched_hosts(const Config& config) {
    std::vector<routing::WatchedHost> hosts;
    for (const auto& [name, database] : config.databases) {
        for (const Endpoint& endpoint : database.hosts) {
            routing::WatchedHost host{endpoint.to_string(), endpoint.host, endpoint.port};
            if (std::ranges::find(hosts, host) == hosts.end()) hosts.push_back(std::move(host));
        }
    }
    return hosts;
}

routing::WatcherSettings watcher_settings(const Config& config, const AuthUsers& users) {
    const Settings& settings = config.settings;
    routing::WatcherSettings watcher;
    watcher.interval =
        std::chrono::duration_cast<std::chrono::milliseconds>(settings.health_check_interval);
    watcher.timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(settings.health_check_timeout);
    watcher.user = settings.health_check_user;
    watcher.dbname = settings.health_check_dbname;
    watcher.password = settings.health_check_password;
    if (watcher.password.empty()) {
        // libpq needs the password itself: a hash in auth_file cannot log the watcher in.
        const auto secret = find_secret(config, users, settings.health_check_user);
        if (secret && classify_secret(*secret) == SecretKind::plain) {
            watcher.password = std::string(*secret);
        }
    }
    // The probes carry a password, so they use TLS as the pools do; the certificate checks of
    // verify-ca and verify-full need the CA file, which libpq takes as sslrootcert.
    watcher.sslmode = std::string(to_string(settings.server_tls_sslmode));
    watcher.sslrootcert = settings.server_tls_ca_file;
    return watcher;
}

// A host whose servers must not be lent any more: it stopped answering, or it restarted in
// another role (a promotion, or a former primary back as a replica).
bool servers_obsolete(const routing::HostState& before, const routing::HostState& now) {
    if (before.healthy && !now.healthy) return true;
    return before.role != routing::Role::unknown && now.role != routing::Role::unknown &&
           before.role != now.role;
}

const routing::HostView* find_host(const routing::DatabaseTopology& database,
                                   std::string_view name) {
    const auto found = std::ranges::find_if(
        database.hosts, [name](const routing::HostView& host) { return host.state.name == name; });
    return found == database.hosts.end() ? nullptr : &*found;
}

} // namespace

HostWatch::HostWatch(const std::shared_ptr<const Config>& config, const AuthUsers& users,
                     routing::TopologyCell& topology, Pools& pools, Metrics& metrics)
    : topology_(topology), pools_(pools), metrics_(metrics) {
    reconfigure(config, users);
}

HostWatch::~HostWatch() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
}

void HostWatch::reconfigure(const std::shared_ptr<const Config>& config, const AuthUsers& users) {
    std::lock_guard lock{mutex_};
    config_ = config;
    watch(users);
    publish(states_);
}

void HostWatch::watch(const AuthUsers& users) {
    watching_ = !config_->settings.health_check_user.empty();
    auto hosts = watching_ ? watched_hosts(*config_) : std::vector<routing::WatchedHost>{};
    auto settings = watcher_settings(*config_, users);
    std::erase_if(states_, [&hosts](const routing::HostState& state) {
        return std::ranges::none_of(
            hosts, [&state](const routing::WatchedHost& host) { return host.name == state.name; });
    });
    if (watcher_) {
        watcher_->reconfigure(std::move(settings), std::move(hosts));
        return;
    }
    if (!watching_) return;
    watcher_ = std::make_unique<routing::Watcher>(
        io_.get_executor(), std::move(settings), std::move(hosts),
        [this](const std::vector<routing::HostState>& states) {
            std::lock_guard lock{mutex_};
            // A report may still name hosts a reload removed: they are not published.
            states_ = states;
            if (watching_) publish(states_);
        });
    asio::co_spawn(io_, watcher_->run(), [](std::exception_ptr e) { log::failure("watcher", e); });
    thread_ = std::thread([this] { io_.run(); });
}

void HostWatch::probe_now(std::string_view host) {
    std::lock_guard lock{mutex_};
    if (watcher_ && watching_) watcher_->probe_now(host);
}

void HostWatch::publish(const std::vector<routing::HostState>& states) {
    std::map<std::string, routing::DatabaseTopology, std::less<>> databases;
    for (const auto& [name, database] : config_->databases) {
        std::vector<std::string> names;
        for (const Endpoint& endpoint : database.hosts)
            names.push_back(endpoint.to_string());
        if (!watching_) {
            databases.emplace(name, routing::static_topology(names));
            continue;
        }
        std::vector<routing::HostState> hosts;
        for (const std::string& host : names) {
            const auto found = std::ranges::find_if(
                states, [&host](const routing::HostState& state) { return state.name == host; });
            if (found != states.end()) {
                hosts.push_back(*found);
            } else {
                hosts.emplace_back().name = host; // not probed yet: unknown
            }
        }
        databases.emplace(name, routing::elect(std::move(hosts)));
    }
    const auto previous = topology_.load();
    topology_.publish(std::move(databases));
    const auto next = topology_.load();
    metrics_.observe_topology(*previous, *next);

    std::set<std::string, std::less<>> obsolete;
    std::set<std::string, std::less<>> back;
    for (const auto& [name, database] : next->databases) {
        const auto* before = previous->find(name);
        if (!before) continue;
        for (const auto& host : database.hosts) {
            const auto* was = find_host(*before, host.state.name);
            if (!was) continue;
            if (servers_obsolete(was->state, host.state)) obsolete.insert(host.state.name);
            if (!was->state.healthy && host.state.healthy) back.insert(host.state.name);
        }
    }
    for (const auto& host : obsolete) {
        log::info("host ", host, " is down or changed role: its servers close");
        pools_.close_servers_of(host);
    }
    for (const auto& host : back) {
        log::info("host ", host, " answers again");
        pools_.retry_logins_to(host);
    }
}

} // namespace proxy

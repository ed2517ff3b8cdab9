#include "proxy/pools.hpp"

#include "proxy/log_format.hpp"
#include "proxy/pool_limits.hpp"

#include <chrono>
#include <vector>

namespace proxy {
namespace {

// PgBouncer's janitor period.
constexpr auto janitor_period = std::chrono::milliseconds(333);

// PgBouncer's "<empty>": an empty query, which PostgreSQL answers with EmptyQueryResponse.
std::string check_sql(const std::string& configured) {
    return configured == "<empty>" ? std::string() : configured;
}

} // namespace

Pools::Pools(std::shared_ptr<const Config> config, std::shared_ptr<const AuthUsers> auth_users,
             Workers& workers, const CurrentTls& tls)
    : config_(std::move(config)), auth_users_(std::move(auth_users)), workers_(workers), tls_(tls) {
}

std::shared_ptr<pool::Caps>
Pools::caps(std::map<std::string, std::shared_ptr<pool::Caps>, std::less<>>& all,
            std::string_view name, int max) {
    auto found = all.find(name);
    if (found == all.end()) {
        found = all.emplace(std::string(name), std::make_shared<pool::Caps>(max)).first;
    }
    return found->second;
}

namespace {

const Endpoint* find_host(const DatabaseConfig& database, std::string_view name) {
    const auto found = std::ranges::find_if(
        database.hosts, [name](const Endpoint& host) { return host.to_string() == name; });
    return found == database.hosts.end() ? nullptr : &*found;
}

} // namespace

ServerPoolSettings Pools::settings_for(const pool::Key& key, const DatabaseConfig& database,
                                       const Endpoint& host) const {
    const Config& config = *config_;
    ServerPoolSettings settings;
    settings.limits = resolve_pool_limits(config, key);
    settings.host = host;
    settings.credentials.user = key.user;
    settings.credentials.database = database.dbname;
    if (database.user && database.password) {
        settings.credentials.secret = *database.password;
    } else if (auto secret = find_secret(config, *auth_users_, key.user)) {
        settings.credentials.secret = std::string(*secret);
    }
    settings.global = config.settings;
    settings.reset_query = config.settings.server_reset_query;
    settings.check_query = check_sql(config.settings.server_check_query);
    return settings;
}

int Pools::max_user_connections(const std::string& user) const {
    const auto found = config_->users.find(user);
    return found != config_->users.end() && found->second.max_user_connections
               ? *found->second.max_user_connections
               : config_->settings.max_user_connections;
}

std::shared_ptr<ServerPool> Pools::get(std::string_view database, std::string_view client_user,
                                       std::string_view host) {
    std::lock_guard lock{mutex_};
    const auto found_database = config_->databases.find(database);
    if (found_database == config_->databases.end()) return nullptr;
    const DatabaseConfig& db = found_database->second;
    Address address{
        pool::Key{std::string(database), std::string(db.user.value_or(std::string(client_user)))},
        std::string(host)};
    if (auto found = pools_.find(address); found != pools_.end()) return found->second;
    const Endpoint* endpoint = find_host(db, host);
    if (!endpoint) return nullptr;

    const pool::Key& key = address.first;
    auto& traffic = traffic_[key];
    if (!traffic) traffic = std::make_shared<TrafficStats>();
    auto pool = std::make_shared<ServerPool>(
        key, settings_for(key, db, *endpoint), traffic,
        caps(database_caps_, key.database,
             db.max_db_connections.value_or(config_->settings.max_db_connections)),
        caps(user_caps_, key.user, max_user_connections(key.user)), ids_, workers_, tls_);
    pools_.emplace(std::move(address), pool);
    return pool;
}

void Pools::reconfigure(std::shared_ptr<const Config> config,
                        std::shared_ptr<const AuthUsers> auth_users) {
    std::vector<std::shared_ptr<ServerPool>> retired;
    {
        std::lock_guard lock{mutex_};
        config_ = std::move(config);
        auth_users_ = std::move(auth_users);
        for (auto& [name, cap] : database_caps_) {
            const auto database = config_->databases.find(name);
            cap->set_max(database == config_->databases.end()
                             ? 0
                             : database->second.max_db_connections.value_or(
                                   config_->settings.max_db_connections));
        }
        for (auto& [name, cap] : user_caps_)
            cap->set_max(max_user_connections(name));
        for (auto it = pools_.begin(); it != pools_.end();) {
            const auto& [key, host] = it->first;
            const auto database = config_->databases.find(key.database);
            const Endpoint* endpoint =
                database == config_->databases.end() ? nullptr : find_host(database->second, host);
            if (endpoint &&
                settings_for(key, database->second, *endpoint) == it->second->settings()) {
                ++it;
                continue;
            }
            retired.push_back(it->second);
            it = pools_.erase(it);
        }
    }
    for (const auto& pool : retired)
        pool->retire();
}

std::vector<std::shared_ptr<ServerPool>> Pools::all() {
    std::vector<std::shared_ptr<ServerPool>> all;
    std::lock_guard lock{mutex_};
    for (const auto& [address, pool] : pools_)
        all.push_back(pool);
    return all;
}

void Pools::retry_logins_to(std::string_view host) {
    for (const auto& pool : all()) {
        if (pool->host().to_string() == host) pool->retry_login_now();
    }
}

void Pools::close_servers_of(std::string_view host) {
    for (const auto& pool : all()) {
        if (pool->host().to_string() == host) pool->close_when_released();
    }
}

void Pools::rebalance(const std::vector<std::shared_ptr<ServerPool>>& all) {
    for (const auto& starving : all) {
        if (!starving->needs_servers()) continue;
        const pool::Key& key = starving->key();
        bool database_full = false;
        bool user_full = false;
        {
            std::lock_guard lock{mutex_};
            database_full = database_caps_.find(key.database)->second->full();
            user_full = user_caps_.find(key.user)->second->full();
        }
        // The slot must be one of every cap that is full, so the donor shares all of them.
        std::shared_ptr<ServerPool> donor;
        std::optional<pool::TimePoint> donor_since;
        for (const auto& other : all) {
            if (other == starving) continue;
            if (database_full && other->key().database != key.database) continue;
            if (user_full && other->key().user != key.user) continue;
            const auto since = other->evictable_since();
            if (since && (!donor_since || *since < *donor_since)) {
                donor = other;
                donor_since = since;
            }
        }
        if (!donor) continue;
        donor->evict();
        starving->tick(); // its waiters take the freed slot now, not a janitor period later
    }
}

std::map<std::string, TrafficTotals, std::less<>> Pools::traffic_by_database() {
    std::map<std::string, TrafficTotals, std::less<>> totals;
    std::lock_guard lock{mutex_};
    for (const auto& [key, traffic] : traffic_)
        totals[key.database] += traffic->read();
    return totals;
}

std::map<std::string, TrafficTotals, std::less<>> Pools::traffic_averages() const {
    std::lock_guard lock{period_mutex_};
    return averages_;
}

Duration Pools::stats_period() {
    std::lock_guard lock{mutex_};
    return config_->settings.stats_period;
}

void Pools::roll_stats_period() {
    auto totals = traffic_by_database();
    const Duration period = stats_period();
    TrafficTotals all_start;
    TrafficTotals all_end;
    {
        std::lock_guard lock{period_mutex_};
        averages_.clear();
        for (const auto& [database, end] : totals) {
            const auto start = period_start_.find(database);
            const TrafficTotals begun =
                start == period_start_.end() ? TrafficTotals{} : start->second;
            averages_[database] = period_averages(begun, end, period);
            all_start += begun;
            all_end += end;
        }
        period_start_ = std::move(totals);
    }
    bool log_stats = false;
    {
        std::lock_guard lock{mutex_};
        log_stats = config_->settings.log_stats;
    }
    // PgBouncer's log_stats: every database together.
    if (log_stats) log::info(log::stats_line(period_averages(all_start, all_end, period)));
    log::flush_repeats();
}

std::pair<int, int> Pools::database_connections(std::string_view database) {
    std::lock_guard lock{mutex_};
    const auto found = database_caps_.find(database);
    if (found == database_caps_.end()) return {0, 0};
    return {found->second->current(), found->second->max()};
}

std::pair<int, int> Pools::user_connections(std::string_view user) {
    std::lock_guard lock{mutex_};
    const auto found = user_caps_.find(user);
    if (found == user_caps_.end()) return {0, 0};
    return {found->second->current(), found->second->max()};
}

asio::awaitable<void> Pools::run_janitor() {
    asio::steady_timer timer{co_await asio::this_coro::executor};
    auto period_ends = pool::Clock::now() + stats_period();
    for (;;) {
        if (pool::Clock::now() >= period_ends) {
            roll_stats_period();
            period_ends += stats_period();
        }
        timer.expires_after(janitor_period);
        auto [ec] = co_await timer.async_wait(nothrow);
        if (ec) co_return;
        const auto pools = all();
        for (const auto& pool : pools)
            pool->tick();
        rebalance(pools);
    }
}

} // namespace proxy

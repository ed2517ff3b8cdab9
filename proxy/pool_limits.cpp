#include "proxy/pool_limits.hpp"

#include <algorithm>

namespace proxy {

namespace {

const DatabaseConfig* find_database(const Config& config, const pool::Key& key) {
    auto found = config.databases.find(key.database);
    return found == config.databases.end() ? nullptr : &found->second;
}

const UserConfig* find_user(const Config& config, const pool::Key& key) {
    auto found = config.users.find(key.user);
    return found == config.users.end() ? nullptr : &found->second;
}

// The first of the user's, the database's and the global value that is set.
template <class T>
T most_specific(const std::optional<T>* user, const std::optional<T>* database, T global) {
    if (user != nullptr && user->has_value()) {
        return **user;
    }
    if (database != nullptr && database->has_value()) {
        return **database;
    }
    return global;
}

} // namespace

pool::Limits resolve_pool_limits(const Config& config, const pool::Key& key) {
    const Settings& global = config.settings;
    const DatabaseConfig* database = find_database(config, key);
    const UserConfig* user = find_user(config, key);

    pool::Limits limits;
    limits.pool_size =
        most_specific(user ? &user->pool_size : nullptr, database ? &database->pool_size : nullptr,
                      global.default_pool_size);
    // PgBouncer's janitor fills only `while cur < min_pool_size && cur < pool_size`: a minimum
    // above the pool size means the pool size.
    const int min_pool_size = database != nullptr && database->min_pool_size
                                  ? *database->min_pool_size
                                  : global.min_pool_size;
    limits.min_pool_size = std::min(min_pool_size, limits.pool_size);
    limits.reserve_pool_size =
        most_specific(user ? &user->reserve_pool_size : nullptr,
                      database ? &database->reserve_pool_size : nullptr, global.reserve_pool_size);
    limits.reserve_pool_timeout = global.reserve_pool_timeout;
    limits.server_idle_timeout = global.server_idle_timeout;
    limits.server_lifetime = global.server_lifetime;
    // PgBouncer: "If an empty string, then sanity checking is disabled." The default "<empty>"
    // is not empty: it sends an empty query, which still checks the connection.
    if (!global.server_check_query.empty()) {
        limits.server_check_delay = global.server_check_delay;
    }
    limits.server_login_retry = global.server_login_retry;
    limits.query_wait_timeout = global.query_wait_timeout;
    return limits;
}

PoolMode resolve_pool_mode(const Config& config, const pool::Key& key) {
    const DatabaseConfig* database = find_database(config, key);
    const UserConfig* user = find_user(config, key);
    return most_specific(user ? &user->pool_mode : nullptr,
                         database ? &database->pool_mode : nullptr, config.settings.pool_mode);
}

} // namespace proxy

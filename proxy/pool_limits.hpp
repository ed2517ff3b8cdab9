// The settings of one pool, resolved from the configuration with PgBouncer's precedence.
//
// pool::Core takes a flat pool::Limits and knows nothing of sections; this is the one place that
// decides which section a pool's numbers come from, so SHOW POOLS, the janitor and the acquire
// path cannot disagree about them.
#pragma once

#include "pool/ids.hpp"
#include "pool/limits.hpp"
#include "proxy/config.hpp"

namespace proxy {

// The limits of the pool `key`: [users.<key.user>] over [databases.<key.database>] over
// [pgmarina], as PgBouncer's pool_pool_size() and pool_res_pool_size(). min_pool_size has no
// per-user key (PgBouncer's pool_min_pool_size() reads only the database and the global), and the
// timeouts are global only. A database or user without a section inherits everything, as a
// PgBouncer user without a `users` line does. `key.user` is the role the servers log in as, so
// with a database's forced `user` the forced user's section applies, as in PgBouncer.
[[nodiscard]] pool::Limits resolve_pool_limits(const Config& config, const pool::Key& key);

// The pool mode of the pool `key`, with the same precedence (PgBouncer's pool_pool_mode()).
[[nodiscard]] PoolMode resolve_pool_mode(const Config& config, const pool::Key& key);

} // namespace proxy

// RELOAD, SIGHUP and SET (reference.md 1.2): a new configuration put in force while clients run.
//
// What changes at once: new clients and new pools use the new configuration; a pool whose
// settings changed is retired, its servers closing as they come back and its clients moving to
// its successor at their next transaction; max_db_connections and max_user_connections take
// their new values. A session keeps the rest of the configuration it started with (its
// timeouts, its pool mode). Settings that only a restart can change (listen, workers, ...) are
// reported, not applied.
#pragma once

#include "proxy/admin_reply.hpp"
#include "proxy/auth_file.hpp"
#include "proxy/config.hpp"
#include "proxy/hba.hpp"

#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace proxy {

struct Runtime;

// The users of `config`'s auth_file (none without one), or every problem with the file.
[[nodiscard]] std::variant<std::shared_ptr<const AuthUsers>, std::vector<std::string>>
load_users(const Config& config);

// The rules of `config`'s auth_hba_file when auth_type is hba (none otherwise: PgBouncer too reads
// the file only then), or every problem with the file.
[[nodiscard]] std::variant<std::shared_ptr<const HbaRules>, std::vector<std::string>>
load_hba_rules(const Config& config);

// Reads the configuration file again. Errors leave everything as it was.
[[nodiscard]] AdminOutcome reload(Runtime& runtime);

// SET `key` = `value` for a [pgmarina] setting that can change without a restart.
[[nodiscard]] AdminOutcome set_setting(Runtime& runtime, const std::string& key,
                                       const std::string& value);

} // namespace proxy

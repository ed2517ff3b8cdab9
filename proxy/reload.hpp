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
#include "proxy/tls_context.hpp"

#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace proxy {

struct Runtime;

// What the files a configuration names hold. Startup, RELOAD and --check-config read them with
// load_files(), so all three accept and refuse the same files.
struct ConfigFiles {
    std::shared_ptr<const AuthUsers> users; // auth_file's; none without one
    // auth_hba_file's when auth_type is hba, none otherwise (PgBouncer too reads it only then).
    std::shared_ptr<const HbaRules> hba;
    // From the TLS settings' certificate, key and CA files: read again every time, so that a
    // RELOAD picks up renewed certificates.
    std::shared_ptr<const TlsContexts> tls;
};

// The files of `config`, or every problem with them.
[[nodiscard]] std::variant<ConfigFiles, std::vector<std::string>> load_files(const Config& config);

// Reads the configuration file again. Errors leave everything as it was.
[[nodiscard]] AdminOutcome reload(Runtime& runtime);

// SET `key` = `value` for a [pgmarina] setting that can change without a restart.
[[nodiscard]] AdminOutcome set_setting(Runtime& runtime, const std::string& key,
                                       const std::string& value);

} // namespace proxy

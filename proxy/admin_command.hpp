// The admin console's language: one command per query, PgBouncer's grammar (reference.md 1.2).
#pragma once

#include "proxy/admin_reply.hpp"

#include <string>
#include <string_view>
#include <variant>

namespace proxy {

enum class AdminVerb {
    show, // SHOW subject; SELECT is an alias, as in PgBouncer's command table
    pause,
    resume,
    disable,
    enable,
    reconnect,
    kill,
    kill_client,
    suspend,
    shutdown,
    reload,
    wait_close,
    set,
};

struct AdminCommand {
    AdminVerb verb = AdminVerb::show;
    // SHOW: the subject in upper case ("POOLS"). PAUSE, RESUME, DISABLE, ENABLE, RECONNECT, KILL,
    // WAIT_CLOSE: the database, or "" for all. KILL_CLIENT: the client's id. SHUTDOWN: "",
    // "WAIT_FOR_SERVERS" or "WAIT_FOR_CLIENTS". SET: the setting's name in lower case.
    std::string argument;
    // SET: the value, unquoted.
    std::string value;

    friend bool operator==(const AdminCommand&, const AdminCommand&) = default;
};

// An empty query (only blanks and semicolons): the console answers EmptyQueryResponse.
struct EmptyAdminQuery {};

// Parses one console query. Keywords are case-insensitive; a trailing ';' is allowed; database
// names follow SQL identifier rules (folded to lower case unless double-quoted). A query the
// grammar does not accept is an AdminError 42601 whose message says what was expected.
[[nodiscard]] std::variant<AdminCommand, EmptyAdminQuery, AdminError>
parse_admin_command(std::string_view sql);

} // namespace proxy

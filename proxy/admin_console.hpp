// The admin console's commands (reference.md 1.2), run for one console client. Admin users may
// run everything; stats users only SHOW.
#pragma once

#include "proxy/admin_command.hpp"
#include "proxy/admin_reply.hpp"
#include "proxy/asio.hpp"
#include "proxy/server_login.hpp"

#include <cstdint>

namespace proxy {

struct Runtime;

// The ParameterStatus set a console client is welcomed with: no server stands behind it, so it
// is ours, with a server_version that says so in PgBouncer's manner ("1.25.0/bouncer").
[[nodiscard]] std::vector<ServerParameter> console_parameters();

class AdminConsole {
public:
    // `client_id` is the console client's own id: KILL spares it.
    AdminConsole(Runtime& runtime, bool admin, std::uint64_t client_id)
        : runtime_(runtime), admin_(admin), client_id_(client_id) {}

    asio::awaitable<AdminOutcome> execute(const AdminCommand& command);

private:
    [[nodiscard]] AdminOutcome show(const std::string& subject);
    // The databases a command names: `database`, or all of them for "". An unknown one is an
    // error, as in PgBouncer.
    [[nodiscard]] bool known_database(const std::string& database) const;
    void reconnect(const std::string& database);
    [[nodiscard]] std::size_t servers(const std::string& database, bool only_active,
                                      bool only_close_needed);

    Runtime& runtime_;
    bool admin_;
    std::uint64_t client_id_;
};

} // namespace proxy

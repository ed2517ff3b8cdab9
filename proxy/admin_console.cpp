#include "proxy/admin_console.hpp"

#include "proxy/console_tables.hpp"
#include "proxy/deadline.hpp"
#include "proxy/log.hpp"
#include "proxy/reload.hpp"
#include "proxy/runtime.hpp"

#include "pgmarina_version.hpp"

#include <charconv>

namespace proxy {
namespace {

AdminReply done(std::string tag) {
    return AdminReply{std::nullopt, std::move(tag), {}};
}

AdminError no_such_database(const std::string& database) {
    return {"3D000", "no such database: " + database};
}

// SHOW HELP's text, one notice line per command, as PgBouncer prints it.
const std::vector<std::string> help_lines = {
    "Console usage",
    "\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
    "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
    "\tSHOW LISTS|SOCKETS|ACTIVE_SOCKETS|STATE|HOSTS",
    "\tSET key = arg",
    "\tRELOAD",
    "\tPAUSE [<db>]",
    "\tRESUME [<db>]",
    "\tDISABLE <db>",
    "\tENABLE <db>",
    "\tRECONNECT [<db>]",
    "\tKILL [<db>]",
    "\tKILL_CLIENT <client_id>",
    "\tSUSPEND",
    "\tSHUTDOWN",
    "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
    "\tWAIT_CLOSE [<db>]"};

std::string_view verb_name(AdminVerb verb) {
    switch (verb) {
    case AdminVerb::show:
        return "SHOW";
    case AdminVerb::pause:
        return "PAUSE";
    case AdminVerb::resume:
        return "RESUME";
    case AdminVerb::disable:
        return "DISABLE";
    case AdminVerb::enable:
        return "ENABLE";
    case AdminVerb::reconnect:
        return "RECONNECT";
    case AdminVerb::kill:
        return "KILL";
    case AdminVerb::kill_client:
        return "KILL_CLIENT";
    case AdminVerb::suspend:
        return "SUSPEND";
    case AdminVerb::shutdown:
        return "SHUTDOWN";
    case AdminVerb::reload:
        return "RELOAD";
    case AdminVerb::wait_close:
        return "WAIT_CLOSE";
    case AdminVerb::set:
        return "SET";
    }
    return "?";
}

} // namespace

std::vector<ServerParameter> console_parameters() {
    return {{"server_version", PGMARINA_VERSION "/pgmarina"},
            {"server_encoding", "UTF8"},
            {"client_encoding", "UTF8"},
            {"DateStyle", "ISO"},
            {"TimeZone", "UTC"},
            {"integer_datetimes", "on"},
            {"standard_conforming_strings", "on"},
            {"application_name", ""}};
}

AdminOutcome AdminConsole::show(const std::string& subject) {
    if (subject == "HELP") return AdminReply{std::nullopt, "SHOW", help_lines};
    auto table = show_table(runtime_, subject);
    if (!table) return AdminError{"42601", "unknown SHOW subject: " + subject};
    return AdminReply{std::move(table), "SHOW", {}};
}

bool AdminConsole::known_database(const std::string& database) const {
    return database.empty() || runtime_.config()->databases.contains(database);
}

void AdminConsole::reconnect(const std::string& database) {
    for (const auto& pool : runtime_.pools.all()) {
        if (database.empty() || pool->key().database == database) pool->close_when_released();
    }
}

std::size_t AdminConsole::servers(const std::string& database, bool only_active,
                                  bool only_close_needed) {
    std::size_t count = 0;
    for (const auto& pool : runtime_.pools.all()) {
        if (!database.empty() && pool->key().database != database) continue;
        for (const ServerRow& server : pool->snapshot().servers) {
            if (only_active && server.view.state != pool::ServerState::active &&
                server.view.state != pool::ServerState::being_canceled) {
                continue;
            }
            if (only_close_needed && !server.view.close_needed) continue;
            ++count;
        }
    }
    return count;
}

asio::awaitable<AdminOutcome> AdminConsole::execute(const AdminCommand& command) {
    if (command.verb == AdminVerb::show) co_return show(command.argument);
    if (!admin_) co_return AdminError{"42501", "admin access needed"};
    const std::string& argument = command.argument;
    switch (command.verb) {
    case AdminVerb::pause:
    case AdminVerb::resume:
    case AdminVerb::disable:
    case AdminVerb::enable:
    case AdminVerb::reconnect:
    case AdminVerb::kill:
    case AdminVerb::wait_close:
        if (!known_database(argument)) co_return no_such_database(argument);
        break;
    default:
        break;
    }
    log::info("C-", client_id_, " console: ", verb_name(command.verb), argument.empty() ? "" : " ",
              argument);
    if (command.verb == AdminVerb::pause) {
        // PgBouncer: new transactions wait, running ones finish, then the servers go.
        runtime_.switches.pause(argument);
        co_await poll_until([&] { return servers(argument, true, false) == 0; });
        reconnect(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::resume) {
        runtime_.switches.resume(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::disable) {
        runtime_.switches.disable(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::enable) {
        runtime_.switches.enable(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::reconnect) {
        reconnect(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::wait_close) {
        co_await poll_until([&] { return servers(argument, false, true) == 0; });
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::kill) {
        // PgBouncer: every client and server of the database goes, and it stays paused.
        runtime_.switches.pause(argument);
        runtime_.sessions.kill_database(argument, client_id_);
        reconnect(argument);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::kill_client) {
        std::uint64_t id = 0;
        std::from_chars(argument.data(), argument.data() + argument.size(), id);
        if (id == client_id_ || !runtime_.sessions.kill(id)) {
            co_return AdminError{"08P01", "no such client: " + argument};
        }
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::suspend) {
        runtime_.switches.suspend();
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::shutdown) {
        const auto mode = shutdown_mode(argument);
        if (!mode) co_return AdminError{"42601", "unknown SHUTDOWN mode: " + argument};
        runtime_.shutdown(*mode);
        co_return done(std::string(verb_name(command.verb)));
    }
    if (command.verb == AdminVerb::reload) co_return reload(runtime_);
    co_return set_setting(runtime_, argument, command.value);
}

} // namespace proxy

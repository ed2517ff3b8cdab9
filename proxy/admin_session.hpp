// The admin console's side of the protocol, after login. PgBouncer's console refuses the
// extended query protocol; ours speaks it too, because psycopg 3, Npgsql and Go drivers use it
// even for a plain SHOW (reference.md section 4, pain point 12).
#pragma once

#include "proxy/admin_command.hpp"
#include "proxy/admin_reply.hpp"
#include "proxy/asio.hpp"
#include "proxy/stream.hpp"
#include "wire/framer.hpp"

#include <functional>
#include <string>

namespace proxy {

// Runs one parsed console command. The session calls it at most once per query or portal, and
// for a SHOW statement also to answer Describe of the statement (SHOW changes nothing).
using AdminExecute = std::function<asio::awaitable<AdminOutcome>(const AdminCommand&)>;

// Serves console queries after the welcome (ReadyForQuery already sent) until the client
// leaves; returns why the session ended (for the disconnect log line, e.g. "client close
// request"). `framer` must be in the typed phase. A command that fails is an ErrorResponse and
// the session goes on; a protocol violation is a FATAL 08P01 and ends it.
[[nodiscard]] asio::awaitable<std::string> serve_admin(ClientStream& socket, wire::Framer& framer,
                                                       const AdminExecute& execute);

} // namespace proxy

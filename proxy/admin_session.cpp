#include "proxy/admin_session.hpp"

#include "proxy/stream_io.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/writer.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace proxy {
namespace {

namespace be = wire::be;
namespace fe = wire::fe;

// pg_type.dat
constexpr std::uint32_t int8_oid = 20;
constexpr std::uint32_t float8_oid = 701;
constexpr std::int16_t eight_bytes = 8; // the typlen of both

// Replies wait until the client has nothing more buffered for us, which covers every point
// where PostgreSQL flushes (Sync, Flush, the end of a Query) without a write per message. Past
// this size they go out at once, so a client that pipelines without reading cannot make us
// hold unbounded output.
constexpr std::size_t flush_threshold = 64 * 1024;

// The messages the console understands (protocol docs, "Message Formats"). FunctionCall and
// COPY mean nothing here.
bool is_console_message(char type) {
    return std::string_view("QPBDECSHX").find(type) != std::string_view::npos;
}

// A type byte for an error message: the character when printable, else its code, since a NUL
// cannot travel inside the message's String.
std::string describe_type(char type) {
    const auto code = static_cast<unsigned char>(type);
    if (code >= 0x20 && code < 0x7f) return std::string("'") + type + "'";
    return "byte " + std::to_string(code);
}

// PostgreSQL's wording, so that drivers' error texts read the same as against a server.
std::string statement_label(std::string_view name) {
    if (name.empty()) return "unnamed prepared statement";
    return "prepared statement \"" + std::string(name) + "\"";
}

std::string portal_label(std::string_view name) {
    return "portal \"" + std::string(name) + "\"";
}

// A query the console accepted: a command, or the empty query.
using Statement = std::variant<AdminCommand, EmptyAdminQuery>;

// What running a statement came to.
using Answer = std::variant<AdminReply, AdminError, EmptyAdminQuery>;

Statement to_statement(std::variant<AdminCommand, EmptyAdminQuery, AdminError> parsed) {
    if (auto* command = std::get_if<AdminCommand>(&parsed)) return std::move(*command);
    return EmptyAdminQuery{};
}

bool is_show(const Statement& statement) {
    const auto* command = std::get_if<AdminCommand>(&statement);
    return command && command->verb == AdminVerb::show;
}

// A bound statement. Its command runs once, when a Describe or an Execute first needs the
// result; both then read the same answer.
struct Portal {
    Statement statement;
    std::optional<Answer> answer;
};

// Names are the client's; std::less<> looks them up by the string_view a message holds.
template <class T>
using NameMap = std::map<std::string, T, std::less<>>;

class AdminSession {
public:
    AdminSession(ClientStream& socket, wire::Framer& framer, const AdminExecute& execute)
        : socket_(socket), framer_(framer), execute_(execute) {}

    asio::awaitable<std::string> run() {
        // GCC 12 miscompiles a co_await in a loop or switch condition, hence the flag.
        bool going = true;
        while (going)
            going = co_await step();
        // Replies to what came before a Terminate are still owed, as PostgreSQL sends them.
        co_await flush();
        co_return std::move(end_reason_);
    }

private:
    // One client message. False ends the session.
    asio::awaitable<bool> step() {
        auto frame = framer_.next();
        if (frame && !*frame) {
            if (!co_await flush()) co_return gone();
            frame = co_await read_frame(socket_, framer_);
        }
        if (!frame) co_return malformed(frame.error());
        if (!*frame) co_return gone();
        if (!co_await handle(**frame)) co_return false;
        if (out_.bytes().size() < flush_threshold) co_return true;
        if (!co_await flush()) co_return gone();
        co_return true;
    }

    asio::awaitable<bool> handle(const wire::Frame& frame) {
        if (frame.type == fe::Terminate::type) {
            end_reason_ = "client close request";
            co_return false;
        }
        if (!is_console_message(frame.type)) {
            co_return fail("unsupported frontend message type " + describe_type(frame.type));
        }
        if (frame.type == fe::Sync::type) co_return co_await on_sync(frame);
        // After an error the server skips, unread, everything up to the next Sync (protocol
        // docs, "Extended Query"); the client counts on it to resynchronise.
        if (skipping_) co_return true;
        if (frame.type == fe::Query::type) co_return co_await on_query(frame);
        if (frame.type == fe::Parse::type) co_return co_await on_parse(frame);
        if (frame.type == fe::Bind::type) co_return co_await on_bind(frame);
        if (frame.type == fe::Describe::type) co_return co_await on_describe(frame);
        if (frame.type == fe::Execute::type) co_return co_await on_execute(frame);
        if (frame.type == fe::Close::type) co_return co_await on_close(frame);
        // Flush: what is pending goes out before the next read anyway.
        const auto flush_request = fe::Flush::parse(frame);
        if (!flush_request) co_return malformed(flush_request.error());
        co_return true;
    }

    // ---- Simple query protocol ----

    asio::awaitable<bool> on_query(const wire::Frame& frame) {
        const auto query = fe::Query::parse(frame);
        if (!query) co_return malformed(query.error());
        auto parsed = parse_admin_command(query->query);
        if (const auto* refused = std::get_if<AdminError>(&parsed)) {
            put_error(*refused);
        } else {
            const Statement statement = to_statement(std::move(parsed));
            const Answer answer = co_await run(statement);
            const auto* reply = std::get_if<AdminReply>(&answer);
            if (reply && reply->table) row_description(*reply->table).encode(out_);
            put_result(answer);
        }
        be::ReadyForQuery::idle().encode(out_);
        co_return true;
    }

    // ---- Extended query protocol ----

    asio::awaitable<bool> on_parse(const wire::Frame& frame) {
        const auto parse = fe::Parse::parse(frame);
        if (!parse) co_return malformed(parse.error());
        if (!parse->parameter_types.empty()) {
            refuse("0A000", "the admin console does not support parameters");
            co_return true;
        }
        auto parsed = parse_admin_command(parse->query);
        if (const auto* refused = std::get_if<AdminError>(&parsed)) {
            refuse(refused->sqlstate, refused->message);
            co_return true;
        }
        // The unnamed statement is replaced by each Parse; a named one must be closed first.
        if (!parse->statement.empty() && statements_.contains(parse->statement)) {
            refuse("42P05", statement_label(parse->statement) + " already exists");
            co_return true;
        }
        statements_.insert_or_assign(std::string(parse->statement),
                                     to_statement(std::move(parsed)));
        be::ParseComplete{}.encode(out_);
        co_return true;
    }

    asio::awaitable<bool> on_bind(const wire::Frame& frame) {
        const auto bind = fe::Bind::parse(frame);
        if (!bind) co_return malformed(bind.error());
        const auto statement = statements_.find(bind->statement);
        if (statement == statements_.end()) {
            refuse("26000", statement_label(bind->statement) + " does not exist");
        } else if (!bind->parameters.empty()) {
            refuse("08P01", "bind message supplies " + std::to_string(bind->parameters.size()) +
                                " parameters, but " + statement_label(bind->statement) +
                                " requires 0");
        } else if (!bind->portal.empty() && portals_.contains(bind->portal)) {
            refuse("42P03", portal_label(bind->portal) + " already exists");
        } else if (std::ranges::find(bind->result_formats, wire::FormatCode::binary) !=
                   bind->result_formats.end()) {
            refuse("0A000", "the admin console sends text only: binary results are not supported");
        } else {
            portals_.insert_or_assign(std::string(bind->portal),
                                      Portal{statement->second, std::nullopt});
            be::BindComplete{}.encode(out_);
        }
        co_return true;
    }

    asio::awaitable<bool> on_describe(const wire::Frame& frame) {
        const auto describe = fe::Describe::parse(frame);
        if (!describe) co_return malformed(describe.error());
        if (describe->kind == fe::ObjectKind::portal) {
            Portal* portal = find_portal(describe->name);
            if (!portal) co_return true;
            co_await run_once(*portal);
            put_description(*portal->answer);
            co_return true;
        }
        const auto statement = statements_.find(describe->name);
        if (statement == statements_.end()) {
            refuse("26000", statement_label(describe->name) + " does not exist");
            co_return true;
        }
        // Only a SHOW runs to learn its columns: it changes nothing, unlike every other verb,
        // which returns no rows anyway. Its notices come when it is executed.
        Answer answer = EmptyAdminQuery{};
        if (is_show(statement->second)) answer = co_await run(statement->second, false);
        if (!std::holds_alternative<AdminError>(answer)) be::ParameterDescription{}.encode(out_);
        put_description(answer);
        co_return true;
    }

    asio::awaitable<bool> on_execute(const wire::Frame& frame) {
        const auto execute = fe::Execute::parse(frame);
        if (!execute) co_return malformed(execute.error());
        Portal* portal = find_portal(execute->portal);
        if (!portal) co_return true;
        co_await run_once(*portal);
        // The row limit is ignored: console tables are small, and all rows come at once.
        put_result(*portal->answer);
        if (std::holds_alternative<AdminError>(*portal->answer)) skipping_ = true;
        // Its rows are sent once: executing the portal again finds none left, as in PostgreSQL.
        auto* reply = std::get_if<AdminReply>(&*portal->answer);
        if (reply && reply->table) reply->table->rows.clear();
        co_return true;
    }

    // Closing what does not exist is no error (protocol docs, "Close").
    asio::awaitable<bool> on_close(const wire::Frame& frame) {
        const auto close = fe::Close::parse(frame);
        if (!close) co_return malformed(close.error());
        if (close->kind == fe::ObjectKind::statement) {
            if (auto found = statements_.find(close->name); found != statements_.end())
                statements_.erase(found);
        } else if (auto found = portals_.find(close->name); found != portals_.end()) {
            portals_.erase(found);
        }
        be::CloseComplete{}.encode(out_);
        co_return true;
    }

    // Every console command is its own transaction, which Sync ends: portals do not outlive
    // it, as PostgreSQL's do not outlive theirs.
    asio::awaitable<bool> on_sync(const wire::Frame& frame) {
        const auto sync = fe::Sync::parse(frame);
        if (!sync) co_return malformed(sync.error());
        skipping_ = false;
        portals_.clear();
        be::ReadyForQuery::idle().encode(out_);
        co_return true;
    }

    Portal* find_portal(std::string_view name) {
        const auto found = portals_.find(name);
        if (found != portals_.end()) return &found->second;
        refuse("34000", portal_label(name) + " does not exist");
        return nullptr;
    }

    // ---- Running commands ----

    asio::awaitable<void> run_once(Portal& portal) {
        if (!portal.answer) portal.answer = co_await run(portal.statement);
    }

    // Runs a statement. Its notices go out at once, as PostgreSQL sends them while a command
    // runs, unless the run only serves to learn the columns.
    asio::awaitable<Answer> run(const Statement& statement, bool send_notices = true) {
        const auto* command = std::get_if<AdminCommand>(&statement);
        if (!command) co_return EmptyAdminQuery{};
        AdminOutcome outcome = co_await execute_(*command);
        if (auto* error = std::get_if<AdminError>(&outcome)) co_return std::move(*error);
        auto& reply = std::get<AdminReply>(outcome);
        if (send_notices) {
            for (const auto& notice : reply.notices)
                be::NoticeResponse::make(be::Severity::notice, "00000", notice).encode(out_);
        }
        co_return std::move(reply);
    }

    // ---- Replies ----

    static be::RowDescription row_description(const Table& table) {
        be::RowDescription description;
        for (const Column& column : table.columns) {
            auto field = be::RowDescription::Field::text(column.name);
            if (column.type != ColumnType::text) {
                field.type_oid = column.type == ColumnType::int8 ? int8_oid : float8_oid;
                field.type_size = eight_bytes;
            }
            description.fields.push_back(field);
        }
        return description;
    }

    // What Describe answers: the columns, NoData when there are none, or the command's error.
    void put_description(const Answer& answer) {
        if (const auto* error = std::get_if<AdminError>(&answer)) {
            refuse(error->sqlstate, error->message);
            return;
        }
        const auto* reply = std::get_if<AdminReply>(&answer);
        if (reply && reply->table) {
            row_description(*reply->table).encode(out_);
        } else {
            be::NoData{}.encode(out_);
        }
    }

    // What Execute (or a Query, after the RowDescription) answers.
    void put_result(const Answer& answer) {
        if (const auto* error = std::get_if<AdminError>(&answer)) {
            put_error(*error);
            return;
        }
        const auto* reply = std::get_if<AdminReply>(&answer);
        if (!reply) {
            be::EmptyQueryResponse{}.encode(out_);
            return;
        }
        if (reply->table) {
            be::DataRow row;
            for (const auto& cells : reply->table->rows) {
                row.values.clear();
                for (const Cell& cell : cells)
                    row.values.push_back(cell ? wire::Value(wire::as_bytes(*cell)) : std::nullopt);
                row.encode(out_);
            }
        }
        be::CommandComplete{reply->tag}.encode(out_);
    }

    void put_error(const AdminError& error) {
        be::ErrorResponse::make(be::Severity::error, error.sqlstate, error.message).encode(out_);
    }

    // An error in the extended protocol: the rest of the batch is skipped up to Sync.
    void refuse(std::string_view sqlstate, std::string_view message) {
        be::ErrorResponse::make(be::Severity::error, sqlstate, message).encode(out_);
        skipping_ = true;
    }

    // ---- Output and ending ----

    // False when the client is gone.
    asio::awaitable<bool> flush() {
        const bool written = co_await write_all(socket_, out_.bytes());
        out_.clear();
        co_return written;
    }

    // The client closed the connection, or a read or write on it failed.
    bool gone() {
        end_reason_ = "client unexpected eof";
        return false;
    }

    bool malformed(const boost::system::error_code& ec) {
        return fail("invalid client message: " + ec.message());
    }

    // Ends the session the way PostgreSQL ends a protocol violation: FATAL (run() writes it),
    // then close.
    bool fail(std::string message) {
        be::ErrorResponse::make(be::Severity::fatal, "08P01", message).encode(out_);
        end_reason_ = std::move(message);
        return false;
    }

    ClientStream& socket_;
    wire::Framer& framer_;
    const AdminExecute& execute_;
    // Replies not yet written; see flush_threshold.
    wire::Writer out_;
    NameMap<Statement> statements_;
    // Bound portals; Sync clears them.
    NameMap<Portal> portals_;
    // An extended-protocol message failed: messages are ignored until the next Sync.
    bool skipping_ = false;
    std::string end_reason_ = "client unexpected eof";
};

} // namespace

asio::awaitable<std::string> serve_admin(ClientStream& socket, wire::Framer& framer,
                                         const AdminExecute& execute) {
    AdminSession session{socket, framer, execute};
    co_return co_await session.run();
}

} // namespace proxy

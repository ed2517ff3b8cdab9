#pragma once

// Runs proxy::serve_admin on one end of a Unix socket pair, with a fake console behind it, and
// a scripted client on the other end. The client's view of the replies is spelled one message
// a line ("RowDescription database:25/-1", "ErrorResponse ERROR 42601 ..."), so a test states
// the exact sequence it expects and any extra, missing or reordered message fails it.

#include "proxy/admin_session.hpp"
#include "proxy/stream_io.hpp"
#include "tests/support/wire_builders.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::test {

using local_socket = asio::local::stream_protocol::socket;
using wire::test::Bytes;

// The console the session talks to: SHOW POOLS is a table with a NULL, SHOW HELP only notices,
// any other SHOW an error; RELOAD warns; every other command just completes.
inline AdminOutcome fake_console(const AdminCommand& command) {
    if (command.verb == AdminVerb::show && command.argument == "POOLS") {
        Table table{{{"database", ColumnType::text}, {"cl_active", ColumnType::int8}},
                    {{"app", "3"}, {"pgbouncer", std::nullopt}}};
        return AdminReply{std::move(table), "SHOW", {}};
    }
    if (command.verb == AdminVerb::show && command.argument == "HELP") {
        return AdminReply{std::nullopt, "SHOW", {"Console usage", "SHOW POOLS"}};
    }
    if (command.verb == AdminVerb::show) {
        return AdminError{"42704", "unknown SHOW subject " + command.argument};
    }
    if (command.verb == AdminVerb::reload) {
        return AdminReply{std::nullopt, "RELOAD", {"config file changed"}};
    }
    return AdminReply{std::nullopt, command.verb == AdminVerb::pause ? "PAUSE" : "DONE", {}};
}

// One reply as a line of text.
inline std::string spell(const wire::Frame& frame) {
    namespace be = wire::be;
    const auto text = [](std::span<const std::byte> bytes) {
        return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    };
    if (const auto m = be::RowDescription::parse(frame)) {
        std::string line = "RowDescription";
        for (const auto& field : m->fields) {
            CHECK(field.format == wire::FormatCode::text);
            line += " " + std::string(field.name) + ":" + std::to_string(field.type_oid) + "/" +
                    std::to_string(field.type_size);
        }
        return line;
    }
    if (const auto m = be::DataRow::parse(frame)) {
        std::string line = "DataRow";
        for (const auto& value : m->values)
            line += " " + (value ? text(*value) : std::string("NULL"));
        return line;
    }
    if (const auto m = be::ErrorResponse::parse(frame)) {
        return "ErrorResponse " +
               std::string(m->field(be::FieldType::severity_nonlocalized).value_or("?")) + " " +
               std::string(m->code()) + " " + std::string(m->message());
    }
    if (const auto m = be::NoticeResponse::parse(frame)) {
        return "NoticeResponse " +
               std::string(m->field(be::FieldType::severity_nonlocalized).value_or("?")) + " " +
               std::string(m->code()) + " " + std::string(m->message());
    }
    if (const auto m = be::CommandComplete::parse(frame)) {
        return "CommandComplete " + std::string(m->tag);
    }
    if (const auto m = be::ReadyForQuery::parse(frame)) {
        return "ReadyForQuery " + std::string(1, static_cast<char>(m->status));
    }
    if (const auto m = be::ParameterDescription::parse(frame)) {
        return "ParameterDescription " + std::to_string(m->parameter_types.size());
    }
    if (be::EmptyQueryResponse::parse(frame)) return "EmptyQueryResponse";
    if (be::ParseComplete::parse(frame)) return "ParseComplete";
    if (be::BindComplete::parse(frame)) return "BindComplete";
    if (be::CloseComplete::parse(frame)) return "CloseComplete";
    if (be::NoData::parse(frame)) return "NoData";
    return "unexpected message '" + std::string(1, frame.type) + "'";
}

// Lines as the harness joins them, for comparing with what the client read.
inline std::string lines(std::initializer_list<std::string_view> expected) {
    std::string joined;
    for (const auto line : expected)
        joined.append(line).append("\n");
    return joined;
}

// Frontend messages encoded back to back, to go out in one write (a pipelined batch).
template <class... Messages>
Bytes batch(const Messages&... messages) {
    Bytes bytes;
    ([&bytes](const Bytes& one) { bytes.insert(bytes.end(), one.begin(), one.end()); }(
         wire::test::encoded(messages)),
     ...);
    return bytes;
}

class Client {
public:
    explicit Client(local_socket socket) : socket_(std::move(socket)) {}

    asio::awaitable<void> send(Bytes bytes) {
        const bool sent = co_await write_all(socket_, bytes);
        REQUIRE(sent);
    }
    // The next `count` replies, one a line.
    asio::awaitable<std::string> receive(int count) {
        std::string received;
        for (int i = 0; i < count; ++i) {
            auto frame = co_await read_frame(socket_, framer_);
            REQUIRE(frame.has_value());
            REQUIRE_MESSAGE(frame->has_value(), "the console closed after: ", received);
            received += spell(**frame) + "\n";
        }
        co_return received;
    }
    // Every reply up to the console closing the connection.
    asio::awaitable<std::string> receive_all() {
        std::string received;
        for (;;) {
            auto frame = co_await read_frame(socket_, framer_);
            REQUIRE(frame.has_value());
            if (!*frame) co_return received;
            received += spell(**frame) + "\n";
        }
    }
    // EOF for the console, which can still answer.
    void shutdown_send() { socket_.shutdown(local_socket::shutdown_send); }
    void close() { socket_.close(); }

private:
    local_socket socket_;
    wire::Framer framer_{wire::Phase::typed};
};

struct Transcript {
    std::string reason;            // what serve_admin returned
    std::string replies;           // what the client read after its script, up to EOF
    std::vector<AdminCommand> ran; // what the console was asked to run, in order
};

// Runs `script` as the client, then reads the rest of the replies until serve_admin returns
// and its end of the socket is closed.
template <class Script>
Transcript run_session(Script script, wire::Limits limits = {}) {
    asio::io_context io;
    local_socket console_end(io);
    local_socket client_end(io);
    asio::local::connect_pair(console_end, client_end);
    ClientStream socket(ClientSocket(std::move(console_end)));
    wire::Framer framer(wire::Phase::typed, limits);
    Client client(std::move(client_end));

    Transcript transcript;
    std::optional<std::string> reason;
    const AdminExecute execute =
        [&transcript](const AdminCommand& command) -> asio::awaitable<AdminOutcome> {
        transcript.ran.push_back(command);
        co_return fake_console(command);
    };
    asio::co_spawn(io, serve_admin(socket, framer, execute),
                   [&](std::exception_ptr e, std::string r) {
                       socket.socket().close();
                       if (e) std::rethrow_exception(e);
                       reason = std::move(r);
                   });
    auto client_side = [&]() -> asio::awaitable<void> {
        co_await script(client);
        transcript.replies = co_await client.receive_all();
    };
    asio::co_spawn(io, client_side(), [&](std::exception_ptr e) {
        client.close();
        if (e) std::rethrow_exception(e);
    });
    io.run_for(std::chrono::seconds(30));
    REQUIRE(reason.has_value());
    transcript.reason = std::move(*reason);
    return transcript;
}

// A script that sends `bytes` in one write and nothing else.
inline auto sends(Bytes bytes) {
    return [bytes](Client& client) -> asio::awaitable<void> { co_await client.send(bytes); };
}

} // namespace proxy::test

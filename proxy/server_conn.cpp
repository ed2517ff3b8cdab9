#include "proxy/server_conn.hpp"

#include "proxy/deadline.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/stream_io.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/fe_startup.hpp"
#include "wire/writer.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace proxy {

bool deallocates_all(std::string_view command_tag) {
    return command_tag == "DEALLOCATE ALL" || command_tag == "DISCARD ALL";
}

namespace {

asio::awaitable<boost::system::error_code>
connect_socket(tcp::socket& socket, const tcp::resolver::results_type& endpoints) {
    auto [ec, endpoint] = co_await asio::async_connect(socket, endpoints, nothrow);
    co_return ec;
}

// Asks the server for TLS with an SSLRequest when server_tls_sslmode wants it, and runs the
// handshake when the server agrees ('S'). A server that declines ('N') gets plaintext unless the
// mode requires TLS. Returns the error that ends the login, if one does.
asio::awaitable<std::optional<ServerLoginError>>
negotiate_tls(ServerStream& stream, const Endpoint& host, const TlsContexts& tls) {
    if (!tls.servers) co_return std::nullopt;
    const auto failed = [&host](std::string why) {
        return ServerLoginError{"08006", "TLS to server " + host.to_string() + " failed: " + why};
    };
    wire::Writer request;
    wire::fe::SSLRequest{}.encode(request);
    if (!co_await write_all(stream, request.bytes())) co_return failed("connection lost");
    // One byte answers an SSLRequest; reading more could take the first bytes of an
    // ErrorResponse, or the start of the TLS handshake.
    std::array<std::byte, 1> answer{};
    auto [ec, n] = co_await asio::async_read(stream.socket(), asio::buffer(answer), nothrow);
    if (ec) co_return failed("connection lost");
    if (answer[0] == std::byte{'N'}) {
        if (tls.server_mode >= TlsMode::require) co_return failed("the server does not accept TLS");
        co_return std::nullopt;
    }
    if (answer[0] != std::byte{'S'}) co_return failed("unexpected answer to SSLRequest");
    const bool verify_name = tls.server_mode == TlsMode::verify_full;
    auto why =
        co_await stream.start_tls(TlsEngine::connect(tls.servers.get(), host.host, verify_name));
    if (!why.empty()) co_return failed(why);
    co_return std::nullopt;
}

asio::awaitable<boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>>
connect_and_log_in(pool::ServerId id, const std::string& pool_name, const Endpoint& host,
                   const ServerCredentials& credentials, const Settings& settings,
                   const TlsContexts& tls) {
    const std::size_t max_message_size = settings.max_packet_size.bytes;
    const auto executor = co_await asio::this_coro::executor;
    const auto lost = [&host](const boost::system::error_code& ec) {
        return ServerLoginError{"08006", "server connection to " + host.to_string() +
                                             " failed: " + ec.message()};
    };
    tcp::resolver resolver{executor};
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(host.host, std::to_string(host.port), nothrow);
    if (resolve_ec) co_return lost(resolve_ec);
    tcp::socket socket{executor};
    if (auto ec = co_await connect_socket(socket, endpoints)) co_return lost(ec);
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    set_keepalive(socket.native_handle(), settings);

    ServerStream stream{std::move(socket)};
    if (auto refused = co_await negotiate_tls(stream, host, tls)) co_return std::move(*refused);
    wire::Framer framer{wire::Phase::typed, wire::Limits{.max_message_size = max_message_size}};
    auto welcome = co_await log_in_server(stream, framer, credentials);
    if (!welcome) co_return welcome.error();
    auto server =
        std::make_unique<ServerConn>(id,
                                     "S-" + std::to_string(static_cast<std::uint64_t>(id)) + " " +
                                         pool_name + "@" + host.to_string(),
                                     std::move(stream), std::move(*welcome), max_message_size,
                                     static_cast<std::size_t>(settings.max_prepared_statements));
    co_return std::move(server);
}

} // namespace

ServerConn::ServerConn(pool::ServerId id, std::string name, ServerStream stream,
                       ServerWelcome welcome, std::size_t max_message_size,
                       std::size_t max_prepared_statements)
    : id_(id), name_(std::move(name)), stream_(std::move(stream)),
      framer_(wire::Phase::typed, wire::Limits{.max_message_size = max_message_size}),
      welcome_(std::move(welcome)), statements_(max_prepared_statements) {
    boost::system::error_code ec;
    endpoint_ = stream_.socket().remote_endpoint(ec);
    local_endpoint_ = stream_.socket().local_endpoint(ec);
    for (const auto& parameter : welcome_.parameters)
        parameters_.set(parameter.name, parameter.value);
}

ServerConn::~ServerConn() {
    terminate();
}

void ServerConn::bind_to(const asio::any_io_executor& executor) {
    tcp::socket& socket = stream_.socket();
    if (socket.get_executor() == executor || !socket.is_open()) return;
    // The TLS session, if any, is memory in the stream and moves along unchanged.
    const auto protocol = endpoint_.protocol();
    const auto handle = socket.release();
    socket = tcp::socket(executor, protocol, handle);
}

bool ServerConn::looks_alive() {
    tcp::socket& socket = stream_.socket();
    if (!socket.is_open() || !framer_.buffered().empty() || stream_.has_buffered_input())
        return false;
    std::byte probe{};
    const auto n = ::recv(socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void ServerConn::terminate() noexcept {
    tcp::socket& socket = stream_.socket();
    if (!socket.is_open()) return;
    // Terminate ('X', length 4) lets PostgreSQL end the backend without logging "unexpected EOF".
    static constexpr std::array<std::byte, 5> message{std::byte{'X'}, std::byte{0}, std::byte{0},
                                                      std::byte{0}, std::byte{4}};
    stream_.send_now(message);
    boost::system::error_code ignored;
    socket.close(ignored);
}

asio::awaitable<boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>>
connect_server(pool::ServerId id, const std::string& pool_name, const Endpoint& host,
               const ServerCredentials& credentials, const Settings& settings,
               const TlsContexts& tls) {
    auto outcome =
        co_await within(settings.server_connect_timeout,
                        connect_and_log_in(id, pool_name, host, credentials, settings, tls));
    if (!outcome) {
        co_return ServerLoginError{"08006", "server connection to " + host.to_string() +
                                                " failed: server_connect_timeout"};
    }
    co_return std::move(*outcome);
}

asio::awaitable<bool> run_maintenance_query(ServerConn& server, std::string_view sql) {
    wire::Writer writer;
    wire::fe::Query{sql}.encode(writer);
    if (!co_await write_all(server.stream(), writer.bytes())) co_return false;
    bool failed = false;
    for (;;) {
        auto frame = co_await read_frame(server.stream(), server.framer());
        if (!frame || !*frame) co_return false;
        const wire::Frame& message = **frame;
        switch (message.type) {
        case wire::be::ErrorResponse::type:
            failed = true;
            break;
        case wire::be::ParameterStatus::type:
            if (auto status = wire::be::ParameterStatus::parse(message))
                learn_parameter_status(server.parameters(), *status);
            break;
        case wire::be::CommandComplete::type:
            // server_reset_query is DISCARD ALL by default: the statements are gone.
            if (auto complete = wire::be::CommandComplete::parse(message);
                complete && deallocates_all(complete->tag))
                server.statements().clear();
            break;
        case wire::be::ReadyForQuery::type: {
            auto ready = wire::be::ReadyForQuery::parse(message);
            co_return ready && !failed && ready->status == wire::be::TransactionStatus::idle &&
                server.framer().buffered().empty();
        }
        default:
            break;
        }
    }
}

} // namespace proxy

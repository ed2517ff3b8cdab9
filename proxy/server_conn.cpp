#include "proxy/server_conn.hpp"

#include "proxy/deadline.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/stream_io.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/fe_query.hpp"
#include "wire/writer.hpp"

#include <sys/socket.h>

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

asio::awaitable<boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>>
connect_and_log_in(pool::ServerId id, const std::string& pool_name, const Endpoint& host,
                   const ServerCredentials& credentials, const Settings& settings) {
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

    wire::Framer framer{wire::Phase::typed, wire::Limits{.max_message_size = max_message_size}};
    auto welcome = co_await log_in_server(socket, framer, credentials);
    if (!welcome) co_return welcome.error();
    auto server =
        std::make_unique<ServerConn>(id,
                                     "S-" + std::to_string(static_cast<std::uint64_t>(id)) + " " +
                                         pool_name + "@" + host.to_string(),
                                     std::move(socket), std::move(*welcome), max_message_size,
                                     static_cast<std::size_t>(settings.max_prepared_statements));
    co_return std::move(server);
}

} // namespace

ServerConn::ServerConn(pool::ServerId id, std::string name, tcp::socket socket,
                       ServerWelcome welcome, std::size_t max_message_size,
                       std::size_t max_prepared_statements)
    : id_(id), name_(std::move(name)), socket_(std::move(socket)),
      framer_(wire::Phase::typed, wire::Limits{.max_message_size = max_message_size}),
      welcome_(std::move(welcome)), statements_(max_prepared_statements) {
    boost::system::error_code ec;
    endpoint_ = socket_.remote_endpoint(ec);
    local_endpoint_ = socket_.local_endpoint(ec);
    for (const auto& parameter : welcome_.parameters)
        parameters_.set(parameter.name, parameter.value);
}

ServerConn::~ServerConn() {
    terminate();
}

void ServerConn::bind_to(const asio::any_io_executor& executor) {
    if (socket_.get_executor() == executor || !socket_.is_open()) return;
    const auto protocol = endpoint_.protocol();
    const auto handle = socket_.release();
    socket_ = tcp::socket(executor, protocol, handle);
}

bool ServerConn::looks_alive() {
    if (!socket_.is_open() || !framer_.buffered().empty()) return false;
    std::byte probe{};
    const auto n = ::recv(socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void ServerConn::terminate() noexcept {
    if (!socket_.is_open()) return;
    // Terminate ('X', length 4) lets PostgreSQL end the backend without logging "unexpected EOF".
    static constexpr std::byte message[] = {std::byte{'X'}, std::byte{0}, std::byte{0},
                                            std::byte{0}, std::byte{4}};
    ::send(socket_.native_handle(), message, sizeof message, MSG_DONTWAIT | MSG_NOSIGNAL);
    boost::system::error_code ignored;
    socket_.close(ignored);
}

asio::awaitable<boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>>
connect_server(pool::ServerId id, const std::string& pool_name, const Endpoint& host,
               const ServerCredentials& credentials, const Settings& settings) {
    auto outcome = co_await within(settings.server_connect_timeout,
                                   connect_and_log_in(id, pool_name, host, credentials, settings));
    if (!outcome) {
        co_return ServerLoginError{"08006", "server connection to " + host.to_string() +
                                                " failed: server_connect_timeout"};
    }
    co_return std::move(*outcome);
}

asio::awaitable<bool> run_maintenance_query(ServerConn& server, std::string_view sql) {
    wire::Writer writer;
    wire::fe::Query{sql}.encode(writer);
    if (!co_await write_all(server.socket(), writer.bytes())) co_return false;
    bool failed = false;
    for (;;) {
        auto frame = co_await read_frame(server.socket(), server.framer());
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

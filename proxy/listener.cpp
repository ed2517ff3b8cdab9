#include "proxy/listener.hpp"

#include "proxy/client_session.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/log.hpp"

#include <chrono>

namespace proxy {
namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// accept() fails with EMFILE/ENFILE when descriptors run out; retrying at once would spin on the
// same error, so pause briefly as Asio's throttling listener example does.
constexpr auto accept_error_backoff = std::chrono::milliseconds(100);

asio::awaitable<void> pause_after(const boost::system::error_code& ec, std::string_view where) {
    log::warning("accept on ", where, " failed: ", ec.message());
    asio::steady_timer pause{co_await asio::this_coro::executor, accept_error_backoff};
    co_await pause.async_wait(nothrow);
}

void start_session(ClientSocket socket, Runtime& runtime, int worker, std::string peer) {
    const auto id = runtime.next_client_id.fetch_add(1, std::memory_order_relaxed);
    const auto executor = socket.get_executor();
    asio::co_spawn(executor, serve_client(std::move(socket), runtime, id, worker, std::move(peer)),
                   [id](std::exception_ptr e) { log::failure("C-" + std::to_string(id), e); });
}

} // namespace

boost::system::error_code open_acceptor(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    if (acceptor.open(endpoint.protocol(), ec)) return ec;
    if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) return ec;
    if (acceptor.set_option(reuse_port(true), ec)) return ec;
    if (endpoint.address().is_v6()) {
        // Listening on "[::]" must not also claim the IPv4 port another entry may bind.
        if (acceptor.set_option(asio::ip::v6_only(true), ec)) return ec;
    }
    if (acceptor.bind(endpoint, ec)) return ec;
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return ec;
    return ec;
}

asio::awaitable<void> accept_clients(tcp::acceptor acceptor, Runtime& runtime, int worker) {
    const auto executor = co_await asio::this_coro::executor;
    std::ostringstream where;
    where << acceptor.local_endpoint();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {
            co_await pause_after(ec, where.str());
            continue;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        set_keepalive(socket.native_handle(), runtime.config()->settings);
        const auto peer = socket.remote_endpoint(ignored);
        const auto protocol = asio::generic::stream_protocol(peer.protocol().family(), IPPROTO_TCP);
        const auto handle = socket.release(ignored);
        if (ignored) continue;
        start_session(ClientSocket(executor, protocol, handle), runtime, worker,
                      peer.address().to_string() + ":" + std::to_string(peer.port()));
    }
}

asio::awaitable<void> accept_unix_clients(asio::local::stream_protocol::acceptor acceptor,
                                          Runtime& runtime) {
    const std::string where = acceptor.local_endpoint().path();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {
            co_await pause_after(ec, where);
            continue;
        }
        const int worker = runtime.workers.pick();
        const auto& executor = runtime.workers.executors[static_cast<std::size_t>(worker)];
        boost::system::error_code released;
        const auto handle = socket.release(released);
        if (released) continue;
        start_session(ClientSocket(executor, asio::generic::stream_protocol(AF_UNIX, 0), handle),
                      runtime, worker, "unix");
    }
}

} // namespace proxy

#include "proxy/listener.hpp"

#include <chrono>

#include "proxy/client_session.hpp"
#include "proxy/log.hpp"

namespace proxy {
namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// accept() fails with EMFILE/ENFILE when descriptors run out; retrying at once would spin on the
// same error, so pause briefly as Asio's throttling listener example does.
constexpr auto accept_error_backoff = std::chrono::milliseconds(100);

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

asio::awaitable<void> accept_clients(tcp::acceptor acceptor, ListenerContext& context) {
    const auto executor = co_await asio::this_coro::executor;
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {
            log::warning("accept on ", acceptor.local_endpoint(), " failed: ", ec.message());
            asio::steady_timer pause{executor, accept_error_backoff};
            co_await pause.async_wait(nothrow);
            continue;
        }
        const auto id = context.next_client_id.fetch_add(1, std::memory_order_relaxed);
        asio::co_spawn(executor, serve_client(std::move(socket), context.config, id),
                       [id](std::exception_ptr e) { log::failure("C-" + std::to_string(id), e); });
    }
}

} // namespace proxy

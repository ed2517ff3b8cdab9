#include "proxy/listener.hpp"

#include "proxy/client_session.hpp"
#include "proxy/client_startup.hpp"
#include "proxy/keepalive.hpp"
#include "proxy/log.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>

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

// When descriptors run out, accept() fails and a client waits in the backlog until it gives up,
// learning nothing. A descriptor held in reserve, given up for a moment, lets us take that
// client and tell it why, as PostgreSQL does when it is full (53300), instead. Every acceptor
// (one per worker thread) shares the one reserve, under its mutex.
class SpareDescriptor {
public:
    SpareDescriptor() : fd_(open_spare()) {}
    SpareDescriptor(const SpareDescriptor&) = delete;
    SpareDescriptor& operator=(const SpareDescriptor&) = delete;

    // Takes one connection waiting on `listener` with the spare descriptor, refuses it, and
    // takes the spare back. False if there was no spare, or no connection for it (another
    // thread took the freed descriptor first).
    bool refuse_one(int listener) {
        std::lock_guard lock(mutex_);
        if (fd_ < 0) fd_ = open_spare();
        if (fd_ < 0) return false;
        ::close(fd_);
        const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client >= 0) {
            // What the client sent is read first, so that closing sends FIN, not RST (which
            // could overtake the error).
            char discard[4096];
            for (int i = 0; i < 4 && ::recv(client, discard, sizeof discard, 0) > 0; ++i) {}
            static const auto refusal =
                fatal_error("53300", "no more connections allowed: out of file descriptors");
            [[maybe_unused]] const auto sent =
                ::send(client, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::shutdown(client, SHUT_WR);
            ::close(client);
        }
        fd_ = open_spare();
        return client >= 0;
    }

private:
    static int open_spare() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

    std::mutex mutex_;
    int fd_;
};

// Made by the first acceptor, at startup, while descriptors are still free.
SpareDescriptor& spare_descriptor() {
    static SpareDescriptor spare;
    return spare;
}

bool out_of_descriptors(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors ||
           ec == boost::system::errc::too_many_files_open_in_system;
}

// After a failed accept: a client refused for want of descriptors, or a pause.
asio::awaitable<void> after_accept_error(const boost::system::error_code& ec, int listener,
                                         std::string_view where) {
    if (out_of_descriptors(ec) && spare_descriptor().refuse_one(listener)) {
        log::warning("accept on ", where, ": ", ec.message(), "; refused a client (53300)");
        co_return;
    }
    co_await pause_after(ec, where);
}

void start_session(ClientSocket socket, Runtime& runtime, int worker, std::string peer) {
    const auto id = runtime.next_client_id.fetch_add(1, std::memory_order_relaxed);
    const auto executor = socket.get_executor();
    asio::co_spawn(executor, serve_client(std::move(socket), runtime, id, worker, std::move(peer)),
                   [id](std::exception_ptr e) { log::failure("C-" + std::to_string(id), e); });
}

// A TCP client accepted on `worker`'s acceptor gets its session there.
void serve_tcp(tcp::socket socket, Runtime& runtime, int worker) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    set_keepalive(socket.native_handle(), runtime.config()->settings);
    const auto peer = socket.remote_endpoint(ignored);
    const auto protocol = asio::generic::stream_protocol(peer.protocol().family(), IPPROTO_TCP);
    const auto executor = socket.get_executor();
    const auto handle = socket.release(ignored);
    if (ignored) return;
    start_session(ClientSocket(executor, protocol, handle), runtime, worker,
                  peer.address().to_string() + ":" + std::to_string(peer.port()));
}

// A Unix socket client goes to the workers in turn.
void serve_unix(asio::local::stream_protocol::socket socket, Runtime& runtime) {
    const int worker = runtime.workers.pick();
    const auto& executor = runtime.workers.executors[static_cast<std::size_t>(worker)];
    boost::system::error_code released;
    const auto handle = socket.release(released);
    if (released) return;
    start_session(ClientSocket(executor, asio::generic::stream_protocol(AF_UNIX, 0), handle),
                  runtime, worker, "unix");
}

// Accepts until the acceptor is closed (Listeners::stop or close).
template <class Acceptor, class Serve>
asio::awaitable<void> accept_loop(Acceptor& acceptor, std::string where, Serve serve) {
    spare_descriptor();
    while (acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (!ec) {
            serve(std::move(socket));
            continue;
        }
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        co_await after_accept_error(ec, acceptor.native_handle(), where);
    }
}

// What the kernel has queued for `acceptor` is served, then it closes: a connection left in
// the queue of a closed listener would be reset, not handed to another process on the port.
// Runs on the acceptor's worker, between two steps of its accept loop, which then ends.
template <class Acceptor, class Serve>
void drain_and_close(Acceptor& acceptor, Serve serve) {
    boost::system::error_code ec;
    if (!acceptor.is_open()) return;
    acceptor.non_blocking(true, ec);
    while (!ec) {
        typename Acceptor::protocol_type::socket socket{acceptor.get_executor()};
        acceptor.accept(socket, ec);
        if (!ec) serve(std::move(socket));
    }
    acceptor.close(ec);
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

void Listeners::add_tcp(tcp::acceptor acceptor, int worker) {
    tcp_.push_back(std::make_unique<tcp::acceptor>(std::move(acceptor)));
    tcp_workers_.push_back(worker);
    auto& added = *tcp_.back();
    std::ostringstream where;
    where << added.local_endpoint();
    Runtime& runtime = runtime_;
    asio::co_spawn(added.get_executor(),
                   accept_loop(added, where.str(),
                               [&runtime, worker](tcp::socket socket) {
                                   serve_tcp(std::move(socket), runtime, worker);
                               }),
                   [](std::exception_ptr e) { log::failure("accept loop", e); });
}

void Listeners::add_unix(asio::local::stream_protocol::acceptor acceptor) {
    unix_ = std::make_unique<asio::local::stream_protocol::acceptor>(std::move(acceptor));
    Runtime& runtime = runtime_;
    asio::co_spawn(unix_->get_executor(),
                   accept_loop(*unix_, unix_->local_endpoint().path(),
                               [&runtime](asio::local::stream_protocol::socket socket) {
                                   serve_unix(std::move(socket), runtime);
                               }),
                   [](std::exception_ptr e) { log::failure("unix accept loop", e); });
}

void Listeners::stop() {
    std::call_once(stopped_, [this] {
        log::info("closing the listening sockets");
        Runtime& runtime = runtime_;
        for (std::size_t i = 0; i < tcp_.size(); ++i) {
            tcp::acceptor& acceptor = *tcp_[i];
            const int worker = tcp_workers_[i];
            asio::post(acceptor.get_executor(), [&acceptor, &runtime, worker] {
                drain_and_close(acceptor, [&runtime, worker](tcp::socket socket) {
                    serve_tcp(std::move(socket), runtime, worker);
                });
            });
        }
        if (unix_) {
            auto& acceptor = *unix_;
            asio::post(acceptor.get_executor(), [&acceptor, &runtime] {
                drain_and_close(acceptor, [&runtime](asio::local::stream_protocol::socket socket) {
                    serve_unix(std::move(socket), runtime);
                });
            });
        }
    });
}

void Listeners::close() {
    boost::system::error_code ignored;
    for (auto& acceptor : tcp_)
        acceptor->close(ignored);
    if (unix_) unix_->close(ignored);
}

} // namespace proxy

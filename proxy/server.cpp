#include "proxy/server.hpp"

#include <boost/system/result.hpp>
#include <csignal>
#include <thread>
#include <vector>

#include "proxy/asio.hpp"
#include "proxy/listener.hpp"
#include "proxy/log.hpp"

namespace proxy {
namespace {

// One worker: a thread running its own io_context. A client session lives on one worker for its
// whole life, so its state needs no locks.
struct Worker {
    asio::io_context io{1};
    std::thread thread;
};

unsigned worker_count(const Config& config) {
    if (config.settings.workers > 0) return static_cast<unsigned>(config.settings.workers);
    return std::max(1U, std::thread::hardware_concurrency());
}

// "*" is PgBouncer's spelling of every address, IPv4 and IPv6; a name is resolved once, here.
boost::system::result<std::vector<tcp::endpoint>> resolve_listen_address(const Endpoint& address) {
    if (address.host == "*") {
        return std::vector{tcp::endpoint{tcp::v4(), address.port},
                           tcp::endpoint{tcp::v6(), address.port}};
    }
    asio::io_context io;
    tcp::resolver resolver{io};
    boost::system::error_code ec;
    auto results = resolver.resolve(address.host, std::to_string(address.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) return ec;
    return std::vector{results.begin()->endpoint()};
}

} // namespace

int run(std::shared_ptr<const Config> config) {
    ListenerContext context{.config = config};
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < worker_count(*config); ++i)
        workers.push_back(std::make_unique<Worker>());

    for (const auto& address : config->settings.listen) {
        const auto endpoints = resolve_listen_address(address);
        if (!endpoints) {
            log::error("could not listen on ", address.to_string(), ": ",
                       endpoints.error().message());
            return 1;
        }
        for (const auto& endpoint : *endpoints) {
            for (auto& worker : workers) {
                tcp::acceptor acceptor{worker->io};
                if (auto ec = open_acceptor(acceptor, endpoint)) {
                    log::error("could not listen on ", endpoint, ": ", ec.message());
                    return 1;
                }
                asio::co_spawn(worker->io, accept_clients(std::move(acceptor), context),
                               [](std::exception_ptr e) { log::failure("accept loop", e); });
            }
            log::info("listening on ", endpoint);
        }
    }

    // Signals are taken on the main thread so no worker is ever interrupted mid-handler.
    asio::io_context main_io{1};
    asio::signal_set signals{main_io, SIGINT, SIGTERM};
    signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        log::info("got signal ", signal, ", shutting down");
        for (auto& worker : workers)
            worker->io.stop();
    });
    std::signal(SIGPIPE, SIG_IGN);

    log::info("pgmarina running with ", workers.size(), " worker(s)");
    for (auto& worker : workers)
        worker->thread = std::thread([&io = worker->io] { io.run(); });
    main_io.run();
    for (auto& worker : workers)
        worker->thread.join();
    return 0;
}

} // namespace proxy

#include "proxy/server.hpp"

#include <boost/system/result.hpp>
#include <csignal>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

#include "proxy/asio.hpp"
#include "proxy/auth_file.hpp"
#include "proxy/console_tables.hpp"
#include "proxy/http_endpoint.hpp"
#include "proxy/listener.hpp"
#include "proxy/log.hpp"
#include "proxy/log_format.hpp"
#include "proxy/readiness.hpp"
#include "proxy/reload.hpp"
#include "proxy/runtime.hpp"
#include "proxy/shutdown.hpp"
#include "proxy/tls_context.hpp"

namespace proxy {
namespace {

// One worker: a thread running its own io_context. A client session lives on one worker for its
// whole life, so its state needs no locks.
struct Worker {
    // An io_context whose pending handlers can be destroyed (shutdown) before it is.
    struct Context : asio::io_context {
        using asio::io_context::io_context;
        using asio::io_context::shutdown;
    };
    Context io{1};
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

bool listen_tcp(Runtime& runtime, std::vector<std::unique_ptr<Worker>>& workers,
                Listeners& listeners) {
    for (const auto& address : runtime.config()->settings.listen) {
        const auto endpoints = resolve_listen_address(address);
        if (!endpoints) {
            log::error("could not listen on ", address.to_string(), ": ",
                       endpoints.error().message());
            return false;
        }
        for (const auto& endpoint : *endpoints) {
            for (std::size_t i = 0; i < workers.size(); ++i) {
                tcp::acceptor acceptor{workers[i]->io};
                if (auto ec = open_acceptor(acceptor, endpoint)) {
                    log::error("could not listen on ", endpoint, ": ", ec.message());
                    return false;
                }
                listeners.add_tcp(std::move(acceptor), static_cast<int>(i));
            }
            log::info("listening on ", endpoint);
        }
    }
    return true;
}

// PostgreSQL's socket name, so that `psql -h DIR -p PORT` finds us: DIR/.s.PGSQL.PORT, the
// port being the first listen address's (PgBouncer's listen_port).
bool listen_unix(Runtime& runtime, asio::io_context& io, Listeners& listeners) {
    const Settings& settings = runtime.config()->settings;
    if (settings.unix_socket_dir.empty()) return true;
    const std::uint16_t port = listen_port(settings);
    const auto path =
        std::filesystem::path(settings.unix_socket_dir) / (".s.PGSQL." + std::to_string(port));
    // A file left by a process that died, or the socket of the pgmarina this one replaces in a
    // rolling restart (sharing the TCP port through SO_REUSEPORT): new clients come here now.
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    asio::local::stream_protocol::acceptor acceptor{io};
    boost::system::error_code ec;
    if (!acceptor.open(asio::local::stream_protocol(), ec) &&
        !acceptor.bind(asio::local::stream_protocol::endpoint(path.string()), ec)) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        log::error("could not listen on ", path.string(), ": ", ec.message());
        return false;
    }
    listeners.add_unix(std::move(acceptor));
    log::info("listening on ", path.string());
    return true;
}

// PgBouncer's signals (reference.md 1.2).
void on_signal(int signal, Runtime& runtime, Shutdown& shutdown) {
    log::info("got signal ", signal);
    if (signal == SIGINT) shutdown.begin(ShutdownMode::wait_for_servers);
    if (signal == SIGTERM) shutdown.begin(ShutdownMode::wait_for_clients);
    if (signal == SIGQUIT) shutdown.begin(ShutdownMode::immediate);
    if (signal == SIGUSR1) runtime.switches.pause("");
    if (signal == SIGUSR2) runtime.switches.resume("");
    if (signal == SIGHUP) {
        const auto outcome = reload(runtime);
        if (const auto* error = std::get_if<AdminError>(&outcome)) {
            log::error(error->message);
        } else {
            log::info("configuration reloaded");
        }
    }
}

// /metrics, /healthz and /readyz on their own thread; nullptr when [metrics] listen is "".
boost::system::result<std::unique_ptr<HttpEndpoint>> serve_metrics(Runtime& runtime) {
    const auto& address = runtime.config()->metrics.listen;
    if (!address) return std::unique_ptr<HttpEndpoint>();
    const auto metrics = [&runtime] {
        auto families = exporter_families(exporter_tables(runtime));
        for (auto& family : runtime.metrics.collect())
            families.push_back(std::move(family));
        return render_metrics(families);
    };
    const auto ready = [&runtime] {
        return ready_for_clients(*runtime.config(), *runtime.topology.load(),
                                 runtime.shutting_down.load());
    };
    HttpHandlers handlers{metrics, ready};
    auto endpoint = HttpEndpoint::start(*address, std::move(handlers));
    if (!endpoint) {
        log::error("could not listen on ", address->to_string(), ": ", endpoint.error().message());
        return endpoint.error();
    }
    log::info("metrics on http://", (*endpoint)->local_endpoint(), "/metrics");
    return std::move(*endpoint);
}

} // namespace

int run(std::shared_ptr<const Config> config) {
    if (const auto format = log::parse_format(config->settings.log_format))
        log::set_format(*format);
    auto loaded = load_files(*config);
    if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
        for (const auto& error : *errors)
            log::error(error);
        return 1;
    }
    auto& files = std::get<ConfigFiles>(loaded);
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<asio::any_io_executor> executors;
    for (unsigned i = 0; i < worker_count(*config); ++i) {
        workers.push_back(std::make_unique<Worker>());
        executors.push_back(workers.back()->io.get_executor());
    }
    Runtime runtime{config, std::move(files.users), std::move(files.hba), std::move(files.tls),
                    std::move(executors)};
    Listeners listeners{runtime};
    if (!listen_tcp(runtime, workers, listeners) ||
        !listen_unix(runtime, workers.front()->io, listeners)) {
        return 1;
    }
    auto metrics = serve_metrics(runtime);
    if (!metrics) return 1;
    asio::co_spawn(workers.front()->io, runtime.pools.run_janitor(),
                   [](std::exception_ptr e) { log::failure("janitor", e); });

    // Signals are taken on the main thread so no worker is ever interrupted mid-handler.
    asio::io_context main_io{1};
    asio::signal_set signals{main_io};
    for (const int signal : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2})
        signals.add(signal);
    Shutdown shutdown{main_io, runtime, [&listeners] { listeners.stop(); },
                      [&] {
                          for (auto& worker : workers)
                              worker->io.stop();
                          signals.cancel();
                      }};
    runtime.shutdown = [&shutdown](ShutdownMode mode) { shutdown.begin(mode); };
    std::function<void()> take_signals = [&] {
        signals.async_wait([&](const boost::system::error_code& ec, int signal) {
            if (ec) return;
            on_signal(signal, runtime, shutdown);
            take_signals();
        });
    };
    take_signals();
    std::signal(SIGPIPE, SIG_IGN);

    log::info("pgmarina running with ", workers.size(), " worker(s)");
    for (auto& worker : workers)
        worker->thread = std::thread([&io = worker->io] { io.run(); });
    main_io.run();
    for (auto& worker : workers)
        worker->thread.join();
    // Closed while every io_context still has its services: a listener still open when they
    // shut down would be deregistered from a reactor that already let it go.
    listeners.close();
    // Destroying an io_context destroys its pending handlers: sessions, which use `runtime` and
    // may own the last reference to a pool whose parked servers' sockets belong to another
    // worker's io_context. Destroyed with the io_contexts, one after another, a session would
    // close a socket of an io_context already gone (and touch `runtime`, destroyed before
    // `workers`). So every worker's handlers go first, while all io_contexts and `runtime` exist.
    // Twice: a session destroyed in the first pass can post a server to a waiter on a worker
    // already shut down; the second pass destroys that handler too.
    for (int pass = 0; pass < 2; ++pass) {
        for (auto& worker : workers)
            worker->io.shutdown();
    }
    return 0;
}

} // namespace proxy

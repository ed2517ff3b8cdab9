// The HTTP endpoint for Prometheus and orchestrators: /metrics, /healthz, /readyz.
//
// A deliberately small HTTP/1.1 server: GET and HEAD, one request per connection (every response
// says Connection: close), no request bodies. It runs on a thread and io_context of its own, so a
// slow scrape or a slow scraper never delays a worker's clients, and a stuck worker still lets
// /healthz answer. Each connection is a coroutine bounded in time and in request size, so neither
// a silent client nor a huge header can pin it.
#pragma once

#include "proxy/asio.hpp"
#include "proxy/config.hpp"

#include <boost/system/result.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace proxy {

// What the endpoint asks the process. Both must be set; both are called on the endpoint's thread,
// one request at a time, so they must be safe to call concurrently with the workers.
struct HttpHandlers {
    std::function<std::string()> metrics; // the /metrics body (render_metrics)
    std::function<bool()> ready;          // /readyz: true answers 200, false 503
};

// The complete response (status line, headers, body) to one request head: the request line and
// header lines, including the blank line that ends them. Pure, so the routing can be tested
// without sockets:
//   GET|HEAD /metrics → 200, text/plain; version=0.0.4 (Prometheus' text format)
//   GET|HEAD /healthz → 200 "ok\n" (the process serves HTTP: liveness)
//   GET|HEAD /readyz  → 200 "ready\n" or 503 "not ready\n" (should traffic come here: readiness)
//   another path → 404; another method → 405; a head that is not HTTP/1.x → 400.
// A query string ("/metrics?x=1") is ignored. HEAD answers GET's headers without the body.
[[nodiscard]] std::string http_response(std::string_view head, const HttpHandlers& handlers);

class HttpEndpoint {
public:
    // Listens on `address` and starts serving. Host "*" is every address, IPv6 and IPv4; a name is
    // resolved and its first bindable address used; port 0 picks a free port (tests). An address
    // that cannot be resolved or bound is an error, and no thread is left behind.
    [[nodiscard]] static boost::system::result<std::unique_ptr<HttpEndpoint>>
    start(const Endpoint& address, HttpHandlers handlers);

    // Stops serving: open connections are dropped, the thread is joined.
    ~HttpEndpoint();

    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

    // The address actually bound (with the port the kernel chose for port 0).
    [[nodiscard]] tcp::endpoint local_endpoint() const { return local_endpoint_; }

private:
    explicit HttpEndpoint(HttpHandlers handlers);

    [[nodiscard]] boost::system::error_code listen(const Endpoint& address);
    asio::awaitable<void> accept_connections();
    asio::awaitable<void> serve(tcp::socket socket);

    // Declared before io_: connection coroutines, destroyed with io_, may still refer to them.
    const HttpHandlers handlers_;
    asio::io_context io_{1};
    tcp::acceptor acceptor_{io_};  // used only on thread_ once it runs
    tcp::endpoint local_endpoint_; // set before thread_ starts, constant after
    std::thread thread_;           // runs io_
};

} // namespace proxy

#include "proxy/http_endpoint.hpp"

#include "proxy/deadline.hpp"
#include "proxy/log.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace proxy {
namespace {

using namespace std::chrono_literals;

// Request line and headers together. Scrapers send a few hundred bytes; 8 KiB is the common
// default of HTTP servers, and a request over it is answered 431 rather than buffered.
constexpr std::size_t max_head_size = 8 * 1024;
// A scraper sends its whole request at once; a head still incomplete after this long is dropped.
constexpr auto request_timeout = 10s;
// Writing the response: /metrics may be large and the scraper slow, but not stuck.
constexpr auto response_timeout = 30s;
// After the response, how long unread request bytes are drained before closing: closing with
// unread bytes sends a reset, which can make the client's TCP discard the response it has not
// read yet (RFC 9112 9.6, "lingering close").
constexpr auto linger_timeout = 2s;
// accept() fails with EMFILE when descriptors run out; retrying at once would spin.
constexpr auto accept_error_backoff = 100ms;

constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view text_content_type = "text/plain; charset=utf-8";

std::string_view reason(int status) {
    if (status == 200) return "OK";
    if (status == 400) return "Bad Request";
    if (status == 404) return "Not Found";
    if (status == 405) return "Method Not Allowed";
    if (status == 431) return "Request Header Fields Too Large";
    return "Service Unavailable"; // 503
}

struct Response {
    int status = 200;
    std::string_view content_type = text_content_type;
    std::string body;
};

std::string serialize(const Response& response, bool with_body) {
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " ";
    out += reason(response.status);
    out += "\r\nContent-Type: ";
    out += response.content_type;
    out += "\r\nContent-Length: " + std::to_string(response.body.size());
    // 405 must say what is allowed (RFC 9110 15.5.6).
    if (response.status == 405) out += "\r\nAllow: GET, HEAD";
    out += "\r\nConnection: close\r\n\r\n";
    if (with_body) out += response.body;
    return out;
}

// The head's lines, without their CRLFs, up to the blank line.
std::vector<std::string_view> head_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    for (;;) {
        const auto end = head.find("\r\n");
        const auto line = head.substr(0, end);
        if (line.empty()) break;
        lines.push_back(line);
        if (end == std::string_view::npos) break;
        head.remove_prefix(end + 2);
    }
    return lines;
}

// A header line is "name: value"; a name is a token, so it has no blanks and is not empty.
bool valid_header(std::string_view line) {
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    return line.substr(0, colon).find_first_of(" \t") == std::string_view::npos;
}

struct RequestLine {
    std::string_view method;
    std::string_view path; // without the query string
};

// "METHOD SP target SP HTTP/1.x" with single spaces, as RFC 9112 3 writes it.
std::optional<RequestLine> parse_request_line(std::string_view line) {
    const auto first = line.find(' ');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = line.find(' ', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    const auto method = line.substr(0, first);
    const auto target = line.substr(first + 1, second - first - 1);
    const auto version = line.substr(second + 1);
    if (method.empty() || !target.starts_with('/')) return std::nullopt;
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return std::nullopt;
    return RequestLine{method, target.substr(0, target.find('?'))};
}

Response route(std::string_view path, const HttpHandlers& handlers) {
    if (path == "/metrics") return {200, metrics_content_type, handlers.metrics()};
    if (path == "/healthz") return {200, text_content_type, "ok\n"};
    if (path == "/readyz") {
        if (handlers.ready()) return {200, text_content_type, "ready\n"};
        return {503, text_content_type, "not ready\n"};
    }
    return {404, text_content_type, "not found\n"};
}

// Reads and discards what the client still sends, until it closes or `linger_timeout` passes.
asio::awaitable<void> drain(tcp::socket& socket) {
    std::array<char, 4096> scratch{};
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(scratch), nothrow);
        if (ec) co_return;
    }
}

// Every address "*" may mean, best first: IPv6 also accepting IPv4, then IPv4 alone for a host
// without IPv6. Anything else is resolved.
boost::system::result<std::vector<tcp::endpoint>> candidates(const Endpoint& address,
                                                             asio::io_context& io) {
    if (address.host == "*") {
        return std::vector{tcp::endpoint{tcp::v6(), address.port},
                           tcp::endpoint{tcp::v4(), address.port}};
    }
    tcp::resolver resolver{io};
    boost::system::error_code ec;
    const auto results =
        resolver.resolve(address.host, std::to_string(address.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) return ec;
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results)
        endpoints.push_back(entry.endpoint());
    return endpoints;
}

boost::system::error_code open_listener(tcp::acceptor& acceptor, const tcp::endpoint& endpoint,
                                        bool dual_stack) {
    boost::system::error_code ec;
    if (acceptor.open(endpoint.protocol(), ec)) return ec;
    // A restarted process must not wait for its predecessor's connections in TIME_WAIT. No
    // SO_REUSEPORT: a second process on the same port is an error to report, not to share with.
    if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) return ec;
    if (dual_stack && acceptor.set_option(asio::ip::v6_only(false), ec)) return ec;
    if (acceptor.bind(endpoint, ec)) return ec;
    if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return ec;
    return ec;
}

} // namespace

std::string http_response(std::string_view head, const HttpHandlers& handlers) {
    const auto lines = head_lines(head);
    const auto request = lines.empty() ? std::nullopt : parse_request_line(lines.front());
    if (!request || !std::all_of(lines.begin() + 1, lines.end(), valid_header)) {
        return serialize({400, text_content_type, "bad request\n"}, true);
    }
    const bool head_only = request->method == "HEAD";
    if (request->method != "GET" && !head_only) {
        return serialize({405, text_content_type, "method not allowed\n"}, true);
    }
    return serialize(route(request->path, handlers), !head_only);
}

HttpEndpoint::HttpEndpoint(HttpHandlers handlers) : handlers_(std::move(handlers)) {}

HttpEndpoint::~HttpEndpoint() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
}

boost::system::result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(const Endpoint& address,
                                                                         HttpHandlers handlers) {
    std::unique_ptr<HttpEndpoint> endpoint{new HttpEndpoint(std::move(handlers))};
    if (auto ec = endpoint->listen(address)) return ec;
    asio::co_spawn(endpoint->io_, endpoint->accept_connections(),
                   [](std::exception_ptr e) { log::failure("http accept loop", e); });
    endpoint->thread_ = std::thread([&io = endpoint->io_] { io.run(); });
    return endpoint;
}

boost::system::error_code HttpEndpoint::listen(const Endpoint& address) {
    const auto endpoints = candidates(address, io_);
    if (!endpoints) return endpoints.error();
    boost::system::error_code ec = asio::error::host_not_found;
    for (const auto& endpoint : *endpoints) {
        const bool dual_stack = address.host == "*" && endpoint.address().is_v6();
        ec = open_listener(acceptor_, endpoint, dual_stack);
        if (!ec) {
            local_endpoint_ = acceptor_.local_endpoint(ec);
            return ec;
        }
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        // Only an address this host cannot have (IPv6 switched off) moves on to the next one; a
        // port in use stays an error, or "*" would quietly serve IPv4 alone.
        if (ec != asio::error::address_family_not_supported &&
            ec != boost::system::errc::address_not_available) {
            return ec;
        }
    }
    return ec;
}

asio::awaitable<void> HttpEndpoint::accept_connections() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {
            log::warning("accept on HTTP endpoint ", local_endpoint_, " failed: ", ec.message());
            asio::steady_timer pause{io_, accept_error_backoff};
            co_await pause.async_wait(nothrow);
            continue;
        }
        asio::co_spawn(io_, serve(std::move(socket)),
                       [](std::exception_ptr e) { log::failure("http connection", e); });
    }
}

asio::awaitable<void> HttpEndpoint::serve(tcp::socket socket) {
    std::string head;
    auto read = co_await within(
        request_timeout, asio::async_read_until(socket, asio::dynamic_buffer(head, max_head_size),
                                                "\r\n\r\n", nothrow));
    if (!read) co_return; // silent too long
    auto [ec, head_size] = *read;
    std::string response;
    if (ec == asio::error::not_found) {
        // The buffer filled up before the blank line: the head is over the limit.
        response = serialize({431, text_content_type, "request header too large\n"}, true);
    } else if (ec) {
        co_return; // the client went away
    } else {
        response = http_response(std::string_view(head).substr(0, head_size), handlers_);
    }
    auto written = co_await within(response_timeout,
                                   asio::async_write(socket, asio::buffer(response), nothrow));
    if (!written || std::get<0>(*written)) co_return;
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    using namespace asio::experimental::awaitable_operators;
    co_await (drain(socket) || sleep_for(linger_timeout));
}

} // namespace proxy

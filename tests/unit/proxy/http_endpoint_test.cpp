// The HTTP endpoint over real loopback TCP (its own thread serves; the test is the client), and
// its request handling as a pure function for the malformed-request variants.
#include "proxy/http_endpoint.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>

using proxy::asio::ip::tcp;
namespace asio = proxy::asio;

namespace {

struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;
    std::string body;

    // The header's value; "" when the response has none.
    std::string header(const std::string& name) const {
        const auto found = headers.find(name);
        return found == headers.end() ? std::string() : found->second;
    }
};

// Splits a raw response; a response that is not HTTP leaves status 0.
Reply parse_reply(const std::string& raw) {
    Reply reply;
    const auto head_end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.1 ") || head_end == std::string::npos) return reply;
    reply.status = std::stoi(raw.substr(9, 3));
    std::size_t at = raw.find("\r\n") + 2;
    while (at < head_end) {
        const auto end = raw.find("\r\n", at);
        const auto line = raw.substr(at, end - at);
        const auto colon = line.find(": ");
        reply.headers[line.substr(0, colon)] = line.substr(colon + 2);
        at = end + 2;
    }
    reply.body = raw.substr(head_end + 4);
    return reply;
}

// A blocking client: one request, then everything until the server closes.
class Client {
public:
    explicit Client(const tcp::endpoint& server) { socket_.connect(server); }

    void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

    // Until the server closes, by FIN or by reset.
    Reply receive() {
        std::string raw;
        boost::system::error_code ignored;
        asio::read(socket_, asio::dynamic_buffer(raw), ignored);
        return parse_reply(raw);
    }

private:
    asio::io_context io_;
    tcp::socket socket_{io_};
};

Reply request(const tcp::endpoint& server, std::string_view bytes) {
    Client client{server};
    client.send(bytes);
    return client.receive();
}

Reply get(const tcp::endpoint& server, const std::string& path) {
    return request(server, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

// An endpoint on an ephemeral loopback port whose /metrics body and readiness the test controls.
struct Fixture {
    std::atomic<bool> ready{false};
    std::unique_ptr<proxy::HttpEndpoint> endpoint;
    tcp::endpoint address;

    Fixture() {
        proxy::HttpHandlers handlers{[] { return std::string("# TYPE up gauge\nup 1\n"); },
                                     [this] { return ready.load(); }};
        auto started = proxy::HttpEndpoint::start({"127.0.0.1", 0}, std::move(handlers));
        REQUIRE(started);
        endpoint = std::move(*started);
        address = endpoint->local_endpoint();
        REQUIRE(address.port() != 0);
    }
};

} // namespace

TEST_SUITE("proxy.http_endpoint") {
    TEST_CASE("GET /metrics: the handler's body in Prometheus' text format") {
        Fixture f;
        const Reply reply = get(f.address, "/metrics");
        CHECK(reply.status == 200);
        CHECK(reply.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        CHECK(reply.header("Content-Length") == "21");
        CHECK(reply.header("Connection") == "close");
        CHECK(reply.body == "# TYPE up gauge\nup 1\n");
        SUBCASE("a query string does not change the path") {
            CHECK(get(f.address, "/metrics?name[]=up").body == "# TYPE up gauge\nup 1\n");
        }
    }

    TEST_CASE("/healthz answers while /readyz follows the readiness callback") {
        Fixture f;
        const Reply health = get(f.address, "/healthz");
        CHECK(health.status == 200);
        CHECK(health.body == "ok\n");

        Reply ready = get(f.address, "/readyz");
        CHECK(ready.status == 503);
        CHECK(ready.body == "not ready\n");
        f.ready = true;
        ready = get(f.address, "/readyz");
        CHECK(ready.status == 200);
        CHECK(ready.body == "ready\n");
        f.ready = false;
        CHECK(get(f.address, "/readyz").status == 503);
    }

    TEST_CASE("HEAD: GET's headers without the body") {
        Fixture f;
        const Reply reply = request(f.address, "HEAD /metrics HTTP/1.1\r\n\r\n");
        CHECK(reply.status == 200);
        CHECK(reply.header("Content-Length") == "21");
        CHECK(reply.body.empty());
    }

    TEST_CASE("unknown path 404, other methods 405 with Allow") {
        Fixture f;
        CHECK(get(f.address, "/").status == 404);
        CHECK(get(f.address, "/metricsx").status == 404);
        const Reply post =
            request(f.address, "POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
        CHECK(post.status == 405);
        CHECK(post.header("Allow") == "GET, HEAD");
    }

    TEST_CASE("a request head over 8 KiB is refused with 431") {
        Fixture f;
        const std::string huge =
            "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
        CHECK(request(f.address, huge).status == 431);
        SUBCASE("one just under the limit is served") {
            const std::string large =
                "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(8000, 'a') + "\r\n\r\n";
            CHECK(request(f.address, large).status == 200);
        }
    }

    TEST_CASE("garbage is a 400") {
        Fixture f;
        CHECK(request(f.address, "hello there\r\n\r\n").status == 400);
    }

    TEST_CASE("connections are served independently: a slow client does not hold up another") {
        Fixture f;
        Client slow{f.address};
        slow.send("GET /healthz HTTP/1.1\r\n");
        CHECK(get(f.address, "/metrics").status == 200);
        Client second_slow{f.address};
        second_slow.send("GET /metrics HTTP/1.1\r\n");
        CHECK(get(f.address, "/healthz").status == 200);
        second_slow.send("\r\n");
        slow.send("\r\n");
        CHECK(slow.receive().body == "ok\n");
        CHECK(second_slow.receive().status == 200);
    }

    TEST_CASE("destruction drops open connections instead of waiting for them") {
        Fixture f;
        Client idle{f.address};
        idle.send("GET /healthz");
        f.endpoint.reset(); // must return without the client finishing its request
        CHECK(idle.receive().status == 0);
    }

    TEST_CASE("an address in use is an error, not a thread left behind") {
        asio::io_context io;
        tcp::acceptor taken{io, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}};
        const auto started =
            proxy::HttpEndpoint::start({"127.0.0.1", taken.local_endpoint().port()},
                                       {[] { return std::string(); }, [] { return true; }});
        REQUIRE_FALSE(started);
        CHECK(started.error() == asio::error::address_in_use);
    }

    TEST_CASE("host \"*\" listens on every address, IPv4 loopback included") {
        auto started = proxy::HttpEndpoint::start(
            {"*", 0}, {[] { return std::string(); }, [] { return true; }});
        REQUIRE(started);
        const auto port = (*started)->local_endpoint().port();
        CHECK((*started)->local_endpoint().address().is_unspecified());
        CHECK(get({asio::ip::make_address("127.0.0.1"), port}, "/healthz").status == 200);
    }
}

TEST_SUITE("proxy.http_response") {
    TEST_CASE("malformed request heads are 400") {
        const proxy::HttpHandlers handlers{[] { return std::string("m"); }, [] { return true; }};
        for (const char* head : {
                 "",
                 "\r\n\r\n",
                 "GET\r\n\r\n",
                 "GET /metrics\r\n\r\n",
                 "GET /metrics HTTP/2.0\r\n\r\n",
                 "GET /metrics  HTTP/1.1\r\n\r\n",
                 "GET metrics HTTP/1.1\r\n\r\n",
                 " GET /metrics HTTP/1.1\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\n: no name\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
             }) {
            CAPTURE(head);
            CHECK(parse_reply(proxy::http_response(head, handlers)).status == 400);
        }
    }

    TEST_CASE("well-formed variants are served") {
        const proxy::HttpHandlers handlers{[] { return std::string("m"); }, [] { return true; }};
        for (const char* head : {
                 "GET /metrics HTTP/1.1\r\n\r\n",
                 "GET /metrics HTTP/1.0\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Agent: "
                 "Prometheus/2.42\r\n\r\n",
                 "GET /metrics HTTP/1.1\r\nX-Empty:\r\n\r\n",
             }) {
            CAPTURE(head);
            const Reply reply = parse_reply(proxy::http_response(head, handlers));
            CHECK(reply.status == 200);
            CHECK(reply.body == "m");
        }
    }

    TEST_CASE("the handlers are not asked for what a request did not ask") {
        int metrics_calls = 0;
        int ready_calls = 0;
        const proxy::HttpHandlers handlers{[&] {
                                               ++metrics_calls;
                                               return std::string();
                                           },
                                           [&] {
                                               ++ready_calls;
                                               return true;
                                           }};
        (void)proxy::http_response("GET /healthz HTTP/1.1\r\n\r\n", handlers);
        (void)proxy::http_response("DELETE /metrics HTTP/1.1\r\n\r\n", handlers);
        (void)proxy::http_response("GET /nothing HTTP/1.1\r\n\r\n", handlers);
        CHECK(metrics_calls == 0);
        CHECK(ready_calls == 0);
    }
}

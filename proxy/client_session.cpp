#include "proxy/client_session.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/system/result.hpp>

#include "proxy/log.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_startup.hpp"
#include "wire/framer.hpp"
#include "wire/writer.hpp"

namespace proxy {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr std::size_t read_chunk = 16 * 1024;

asio::awaitable<void> sleep_for(Duration duration) {
    asio::steady_timer timer{co_await asio::this_coro::executor, duration};
    co_await timer.async_wait(nothrow);
}

asio::awaitable<boost::system::error_code>
connect_socket(tcp::socket& socket, const tcp::resolver::results_type& endpoints) {
    auto [ec, endpoint] = co_await asio::async_connect(socket, endpoints, nothrow);
    co_return ec;
}

// Runs `operation` with a deadline: nullopt when `timeout` passed first, and the operation is
// cancelled. A zero timeout means none, as every PgBouncer timeout setting does.
template <class T>
asio::awaitable<std::optional<T>> within(Duration timeout, asio::awaitable<T> operation) {
    if (timeout.count() <= 0) co_return co_await std::move(operation);
    auto outcome = co_await (std::move(operation) || sleep_for(timeout));
    if (outcome.index() == 1) co_return std::nullopt;
    co_return std::move(std::get<0>(outcome));
}

// Resolves `host` and connects to it within server_connect_timeout.
asio::awaitable<boost::system::result<tcp::socket>> open_server(const Endpoint& host,
                                                                Duration connect_timeout) {
    const auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver{executor};
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(host.host, std::to_string(host.port), nothrow);
    if (resolve_ec) co_return resolve_ec;
    tcp::socket server{executor};
    auto connected = co_await within(connect_timeout, connect_socket(server, endpoints));
    if (!connected) co_return asio::error::timed_out;
    if (*connected) co_return *connected;
    boost::system::error_code ignored;
    server.set_option(tcp::no_delay(true), ignored);
    co_return std::move(server);
}

class ClientSession {
public:
    ClientSession(tcp::socket socket, std::shared_ptr<const Config> config, std::uint64_t id)
        : client_(std::move(socket)), config_(std::move(config)), id_(id),
          framer_(wire::Phase::startup,
                  wire::Limits{.max_message_size = config_->settings.max_packet_size.bytes}) {
        boost::system::error_code ec;
        const auto peer = client_.remote_endpoint(ec);
        peer_ =
            ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
        client_.set_option(tcp::no_delay(true), ec);
    }

    asio::awaitable<void> run() {
        auto startup = co_await within(config_->settings.client_login_timeout, negotiate_startup());
        if (!startup) {
            co_await fail("08P01", "client_login_timeout", "client_login_timeout");
            co_return;
        }
        if (!*startup) co_return;
        co_await relay(**startup);
    }

private:
    // Reads startup-phase packets until a StartupMessage for a configured database arrives;
    // returns that packet rewritten for the server, or nullopt when the session is already over.
    asio::awaitable<std::optional<std::vector<std::byte>>> negotiate_startup() {
        for (;;) {
            auto frame = co_await next_frame();
            if (!frame) {
                co_await fail("08P01", "invalid startup packet: " + frame.error().message(),
                              "bad startup packet");
                co_return std::nullopt;
            }
            if (!*frame) co_return std::nullopt; // gone before saying anything useful
            auto packet = wire::fe::parse_startup_packet(**frame);
            if (!packet) {
                co_await fail(packet.error() == wire::errc::unsupported_protocol ? "0A000"
                                                                                 : "08P01",
                              "unsupported startup packet: " + packet.error().message(),
                              "bad startup packet");
                co_return std::nullopt;
            }
            if (std::holds_alternative<wire::fe::SSLRequest>(*packet) ||
                std::holds_alternative<wire::fe::GSSENCRequest>(*packet)) {
                // Bytes sent behind the request would be read as if they had come through the
                // encrypted channel: the buffer-stuffing attack (CVE-2021-23222 class).
                if (!framer_.buffered().empty()) {
                    log::warning(name(), " closing: received unencrypted data after SSL request");
                    co_return std::nullopt;
                }
                const std::byte refuse[] = {std::byte{'N'}};
                if (!co_await send(refuse)) co_return std::nullopt;
                continue;
            }
            if (std::holds_alternative<wire::fe::CancelRequest>(*packet)) {
                co_await relay_cancel((**frame).raw);
                co_return std::nullopt;
            }
            co_return co_await route(std::get<wire::fe::StartupMessage>(*packet));
        }
    }

    asio::awaitable<std::optional<std::vector<std::byte>>>
    route(const wire::fe::StartupMessage& startup) {
        user_ = std::string(startup.parameter("user").value_or(""));
        database_ = std::string(startup.parameter("database").value_or(""));
        if (database_.empty()) database_ = user_; // libpq's rule when dbname is omitted
        if (user_.empty()) {
            co_await fail("28000", "no PostgreSQL user name specified in startup packet",
                          "no user");
            co_return std::nullopt;
        }
        const auto found = config_->databases.find(database_);
        if (found == config_->databases.end()) {
            co_await fail("3D000", "no such database: " + database_, "unknown database");
            co_return std::nullopt;
        }
        database_config_ = &found->second;

        // The server gets the configured dbname, which an alias database names differently;
        // a client that sent no database name meant the one named like its user.
        wire::fe::StartupMessage forwarded = startup;
        std::erase_if(forwarded.parameters, [](const auto& p) { return p.name == "database"; });
        forwarded.parameters.push_back({"database", database_config_->dbname});
        wire::Writer writer;
        forwarded.encode(writer);
        co_return writer.take();
    }

    // Connects to the database's first host, sends the startup packet, then copies bytes both
    // ways until either side closes.
    asio::awaitable<void> relay(std::span<const std::byte> startup) {
        const Endpoint& host = database_config_->hosts.front();
        auto server = co_await open_server(host, config_->settings.server_connect_timeout);
        if (!server) {
            const std::string why = server.error() == asio::error::timed_out
                                        ? std::string("server_connect_timeout")
                                        : server.error().message();
            co_await fail("08006", "server connection to " + host.to_string() + " failed: " + why,
                          why);
            co_return;
        }
        if (!co_await send_to(*server, startup) || !co_await send_to(*server, framer_.buffered()))
            co_return;
        co_await (pump(client_, *server) || pump(*server, client_));
        log::info(name(), " closing: relay ended");
    }

    // A CancelRequest carries no database, and in relay mode the key it carries is the server's
    // own, so it is passed verbatim to every configured host; a server ignores keys it did not
    // issue.
    asio::awaitable<void> relay_cancel(std::span<const std::byte> packet) {
        for (const auto& [name, database] : config_->databases) {
            for (const auto& host : database.hosts) {
                auto server = co_await open_server(host, config_->settings.server_connect_timeout);
                if (server) co_await send_to(*server, packet);
            }
        }
    }

    static asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
        std::vector<std::byte> buffer(read_chunk);
        for (;;) {
            auto [read_ec, n] = co_await from.async_read_some(asio::buffer(buffer), nothrow);
            if (read_ec) co_return;
            auto [write_ec, written] =
                co_await asio::async_write(to, asio::buffer(buffer.data(), n), nothrow);
            if (write_ec) co_return;
        }
    }

    // The next complete startup-phase frame; an empty optional when the client closed.
    asio::awaitable<wire::Result<std::optional<wire::Frame>>> next_frame() {
        for (;;) {
            auto frame = framer_.next();
            if (!frame || *frame) co_return frame;
            const auto space = framer_.prepare(read_chunk);
            auto [ec, n] =
                co_await client_.async_read_some(asio::buffer(space.data(), space.size()), nothrow);
            if (ec) co_return std::optional<wire::Frame>{};
            framer_.commit(n);
        }
    }

    asio::awaitable<bool> send(std::span<const std::byte> bytes) {
        co_return co_await send_to(client_, bytes);
    }

    static asio::awaitable<bool> send_to(tcp::socket& socket, std::span<const std::byte> bytes) {
        if (bytes.empty()) co_return true;
        auto [ec, n] =
            co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), nothrow);
        co_return !ec;
    }

    // Ends the session the way PostgreSQL does: a FATAL ErrorResponse, then close.
    asio::awaitable<void> fail(std::string_view sqlstate, const std::string& message,
                               std::string_view reason) {
        log::info(name(), " closing: ", reason);
        wire::Writer writer;
        wire::be::ErrorResponse::make(wire::be::Severity::fatal, sqlstate, message).encode(writer);
        co_await send(writer.bytes());
    }

    std::string name() const {
        return "C-" + std::to_string(id_) + " " + (database_.empty() ? "?" : database_) + "/" +
               (user_.empty() ? "?" : user_) + "@" + peer_;
    }

    tcp::socket client_;
    std::shared_ptr<const Config> config_;
    std::uint64_t id_;
    wire::Framer framer_;
    std::string peer_;
    std::string database_;
    std::string user_;
    const DatabaseConfig* database_config_ = nullptr;
};

} // namespace

asio::awaitable<void> serve_client(tcp::socket socket, std::shared_ptr<const Config> config,
                                   std::uint64_t id) {
    ClientSession session{std::move(socket), std::move(config), id};
    co_await session.run();
}

} // namespace proxy

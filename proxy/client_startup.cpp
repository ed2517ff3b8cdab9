#include "proxy/client_startup.hpp"

#include "proxy/stream_io.hpp"
#include "proxy/tls_engine.hpp"
#include "wire/be_error.hpp"
#include "wire/fe_startup.hpp"
#include "wire/writer.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include <sys/socket.h>

namespace proxy {
namespace {

// Ends the connection with a FATAL ErrorResponse.
asio::awaitable<StartupOutcome> refuse(ClientStream& socket, std::string_view sqlstate,
                                       std::string reason) {
    co_await write_all(socket, fatal_error(sqlstate, reason));
    co_return StartupEnded{std::move(reason)};
}

// Answers SSLRequest or GSSENCRequest with 'N': no encryption, go on in plaintext.
asio::awaitable<bool> refuse_encryption(ClientStream& socket) {
    static constexpr std::array<std::byte, 1> no{std::byte{'N'}};
    co_return co_await write_all(socket, no);
}

// The first byte of a TLS handshake record: a PostgreSQL 17 client with sslnegotiation=direct
// starts TLS without an SSLRequest (protocol docs, "SSL Session Encryption").
constexpr unsigned char tls_handshake_record = 0x16;

// Whether the client's first byte opens a TLS record, looked at without taking it from the
// socket: it then belongs to the handshake.
asio::awaitable<bool> starts_with_tls_record(ClientStream& socket) {
    auto [ec] = co_await socket.socket().async_wait(ClientSocket::wait_read, nothrow);
    if (ec) co_return false;
    unsigned char first = 0;
    const auto n = ::recv(socket.socket().native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    co_return n == 1 && first == tls_handshake_record;
}

// Direct TLS: the handshake starts at once, and the client must have asked for PostgreSQL by
// ALPN, so that a TLS connection meant for another protocol is never read as ours. Returns why
// the connection ends, if it does; a TLS client cannot read a plaintext ErrorResponse.
asio::awaitable<std::optional<std::string>> start_direct_tls(ClientStream& socket,
                                                             const TlsContexts& tls) {
    if (!tls.clients) co_return "direct TLS connection, but client TLS is disabled";
    auto failed = co_await socket.start_tls(TlsEngine::accept(tls.clients.get()));
    if (!failed.empty()) co_return "TLS handshake failed: " + failed;
    if (socket.tls()->alpn() != "postgresql") {
        co_return "direct TLS connection without ALPN protocol \"postgresql\"";
    }
    co_return std::nullopt;
}

} // namespace

std::vector<std::byte> fatal_error(std::string_view sqlstate, std::string_view message) {
    wire::Writer writer;
    wire::be::ErrorResponse::make(wire::be::Severity::fatal, sqlstate, message).encode(writer);
    return writer.take();
}

// GCC 12 with -fsanitize=address inlines Asio's coroutine-frame operator new (aligned_alloc
// from a thread-local cache) into this function and then warns that the frame's operator
// delete does not match it: a false -Wmismatched-new-delete about the pair Asio defines
// together (awaitable_frame_base). The warning is silenced for this function only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<StartupOutcome> read_startup(ClientStream& socket, wire::Framer& framer,
                                             const Config& config, const TlsContexts& tls) {
    if (co_await starts_with_tls_record(socket)) {
        if (auto failed = co_await start_direct_tls(socket, tls))
            co_return StartupEnded{std::move(*failed)};
    }
    for (;;) {
        auto frame = co_await read_frame(socket, framer);
        if (!frame) {
            co_return co_await refuse(socket, "08P01",
                                      "invalid startup packet: " + frame.error().message());
        }
        if (!*frame) co_return StartupEnded{"client closed before startup"};
        auto packet = wire::fe::parse_startup_packet(**frame);
        if (!packet) {
            co_return co_await refuse(
                socket, packet.error() == wire::errc::unsupported_protocol ? "0A000" : "08P01",
                "unsupported startup packet: " + packet.error().message());
        }
        const bool ssl_request = std::holds_alternative<wire::fe::SSLRequest>(*packet);
        if (ssl_request || std::holds_alternative<wire::fe::GSSENCRequest>(*packet)) {
            // Bytes sent behind the request would be read as if they had come through the
            // encrypted channel: the buffer-stuffing attack (CVE-2021-23222 class).
            if (!framer.buffered().empty()) {
                co_return StartupEnded{"received unencrypted data after SSL request"};
            }
            // A second request inside TLS is a confused or hostile client.
            if (socket.tls() != nullptr) {
                co_return co_await refuse(socket, "08P01", "SSL request inside an SSL connection");
            }
            if (ssl_request && tls.clients) {
                static constexpr std::array<std::byte, 1> yes{std::byte{'S'}};
                if (!co_await write_all(socket, yes)) co_return StartupEnded{"client gone"};
                auto failed = co_await socket.start_tls(TlsEngine::accept(tls.clients.get()));
                if (!failed.empty()) co_return StartupEnded{"TLS handshake failed: " + failed};
                continue;
            }
            if (!co_await refuse_encryption(socket)) co_return StartupEnded{"client gone"};
            continue;
        }
        if (const auto* cancel = std::get_if<wire::fe::CancelRequest>(&*packet)) {
            CancelRequested request;
            request.key.process_id = cancel->process_id;
            // A 3.2 client's longer key was never handed out by us: no client matches it.
            if (cancel->secret_key.size() != request.key.secret.size()) {
                co_return StartupEnded{"cancel request with an unknown key"};
            }
            std::ranges::copy(cancel->secret_key, request.key.secret.begin());
            co_return request;
        }
        if (tls.client_mode >= TlsMode::require && socket.tls() == nullptr) {
            co_return co_await refuse(socket, "28000", "SSL required");
        }
        auto decision = decide_startup(std::get<wire::fe::StartupMessage>(*packet), config);
        if (auto* refused = std::get_if<StartupRefused>(&decision)) {
            co_return co_await refuse(socket, refused->sqlstate, std::move(refused->reason));
        }
        framer.set_phase(wire::Phase::typed);
        co_return std::move(std::get<AcceptedStartup>(decision));
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

} // namespace proxy

// A connection's byte stream, in plaintext or TLS: the socket, and once TLS has started, the
// TlsEngine between it and the protocol. Sessions read and write through it without caring
// which; the plaintext path is the socket's own operation, with nothing added.
#pragma once

#include "proxy/asio.hpp"
#include "proxy/tls_engine.hpp"

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <sys/socket.h>

namespace proxy {

using IoResult = std::tuple<boost::system::error_code, std::size_t>;

template <class Socket>
class Stream {
public:
    explicit Stream(Socket socket) : socket_(std::move(socket)) {}

    [[nodiscard]] Socket& socket() noexcept { return socket_; }
    [[nodiscard]] auto get_executor() { return socket_.get_executor(); }
    // The TLS session; null in plaintext.
    [[nodiscard]] const TlsEngine* tls() const noexcept { return tls_.get(); }

    // Bytes already received but not yet read: waiting for the socket to become readable would
    // not see them.
    [[nodiscard]] bool has_buffered_input() const { return tls_ && tls_->has_buffered_input(); }

    // Some bytes into `buffer`. A plain function, not a coroutine: in plaintext it hands back
    // the socket's own operation.
    [[nodiscard]] asio::awaitable<IoResult> read_some(asio::mutable_buffer buffer) {
        if (!tls_) return socket_.async_read_some(buffer, nothrow);
        return tls_read_some(buffer);
    }

    // All of `buffers` (one buffer or a sequence, as asio::async_write takes).
    template <class ConstBuffers>
    [[nodiscard]] asio::awaitable<IoResult> write(const ConstBuffers& buffers) {
        if (!tls_) return asio::async_write(socket_, buffers, nothrow);
        // Encrypting is done here and now, into memory; only sending has to wait.
        std::size_t total = 0;
        for (auto it = asio::buffer_sequence_begin(buffers);
             it != asio::buffer_sequence_end(buffers); ++it) {
            const asio::const_buffer buffer(*it);
            const std::span<const std::byte> data(static_cast<const std::byte*>(buffer.data()),
                                                  buffer.size());
            if (tls_->write(data) != TlsEngine::Status::ok) return fail(tls_failure());
            total += buffer.size();
        }
        return send_encrypted(total);
    }

    // Sends `bytes` only if the socket takes them at once: a goodbye (Terminate) before closing.
    void send_now(std::span<const std::byte> bytes) {
        if (tls_) {
            outgoing_.clear();
            if (tls_->write(bytes) != TlsEngine::Status::ok || !tls_->take_output(outgoing_))
                return;
            bytes = outgoing_;
        }
        ::send(socket_.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }

    // Runs the handshake of `engine` over the socket and, when it succeeds, encrypts everything
    // from then on. Returns an empty string on success, else why it failed.
    [[nodiscard]] asio::awaitable<std::string> start_tls(std::unique_ptr<TlsEngine> engine) {
        if (!engine) co_return "cannot create a TLS session";
        for (;;) {
            const auto status = engine->handshake();
            if (auto ec = co_await flush(*engine)) co_return "connection lost: " + ec.message();
            if (status == TlsEngine::Status::ok) break;
            if (status != TlsEngine::Status::want_input) {
                co_return status == TlsEngine::Status::closed ? "peer closed" : engine->error();
            }
            if (auto ec = co_await fill(*engine)) co_return "connection lost: " + ec.message();
        }
        tls_ = std::move(engine);
        co_return std::string();
    }

private:
    asio::awaitable<IoResult> tls_read_some(asio::mutable_buffer buffer) {
        std::span<std::byte> out(static_cast<std::byte*>(buffer.data()), buffer.size());
        for (;;) {
            std::size_t n = 0;
            const auto status = tls_->read(out, n);
            // Reading may have produced records for the peer (a TLS 1.3 KeyUpdate answer).
            if (auto ec = co_await flush(*tls_)) co_return IoResult{ec, 0};
            if (status == TlsEngine::Status::ok) co_return IoResult{boost::system::error_code{}, n};
            if (status == TlsEngine::Status::closed) co_return IoResult{asio::error::eof, 0};
            if (status == TlsEngine::Status::failed) co_return IoResult{tls_failure(), 0};
            if (auto ec = co_await fill(*tls_)) co_return IoResult{ec, 0};
        }
    }

    asio::awaitable<IoResult> send_encrypted(std::size_t plaintext_size) {
        if (auto ec = co_await flush(*tls_)) co_return IoResult{ec, 0};
        co_return IoResult{boost::system::error_code{}, plaintext_size};
    }

    static asio::awaitable<IoResult> fail(boost::system::error_code ec) {
        co_return IoResult{ec, 0};
    }

    // Sends the ciphertext the engine has for the peer.
    asio::awaitable<boost::system::error_code> flush(TlsEngine& engine) {
        outgoing_.clear();
        if (!engine.take_output(outgoing_)) co_return boost::system::error_code{};
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(outgoing_), nothrow);
        co_return ec;
    }

    // Reads ciphertext from the peer into the engine.
    asio::awaitable<boost::system::error_code> fill(TlsEngine& engine) {
        if (incoming_.empty()) incoming_.resize(tls_record_size);
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(incoming_), nothrow);
        if (!ec) engine.feed(std::span(incoming_).first(n));
        co_return ec;
    }

    static boost::system::error_code tls_failure() {
        return make_error_code(boost::system::errc::protocol_error);
    }

    // The largest TLS record, so one read takes in a whole one.
    static constexpr std::size_t tls_record_size = 17 * 1024;

    Socket socket_;
    std::unique_ptr<TlsEngine> tls_;
    // Ciphertext on its way in and out; never allocated in plaintext.
    std::vector<std::byte> incoming_;
    std::vector<std::byte> outgoing_;
};

// A client arrives over TCP or the Unix socket; a server is reached over TCP.
using ClientStream = Stream<ClientSocket>;
using ServerStream = Stream<tcp::socket>;

} // namespace proxy

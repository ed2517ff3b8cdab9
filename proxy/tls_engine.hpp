// One TLS connection's state, without a socket: OpenSSL over two memory buffers. Ciphertext from
// the peer goes in with feed(), ciphertext for the peer comes out with take_output(), and the
// plaintext side is read() and write(). Stream (stream.hpp) moves the bytes between these
// buffers and its socket.
//
// Keeping the socket out of OpenSSL is what lets a server connection move between workers'
// io_contexts (ServerConn::bind_to) with its TLS session: the session is plain memory, owned by
// whichever thread holds the connection.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

class TlsEngine {
public:
    // Where an operation stands.
    enum class Status {
        ok,         // done (handshake complete, bytes read)
        want_input, // needs more ciphertext from the peer: feed() and call again
        closed,     // the peer ended TLS with close_notify
        failed,     // a protocol or verification error: the connection is unusable
    };

    // The server side of a handshake with a client (pgmarina accepting TLS).
    [[nodiscard]] static std::unique_ptr<TlsEngine> accept(SSL_CTX* context);
    // The client side toward a server at `host`; with `verify_name` the certificate must name
    // `host` (an IP address is checked against the certificate's IP entries).
    [[nodiscard]] static std::unique_ptr<TlsEngine>
    connect(SSL_CTX* context, const std::string& host, bool verify_name);

    TlsEngine(const TlsEngine&) = delete;
    TlsEngine& operator=(const TlsEngine&) = delete;
    ~TlsEngine();

    [[nodiscard]] Status handshake();
    // Decrypted bytes into `out`; `read` is how many when the status is ok.
    [[nodiscard]] Status read(std::span<std::byte> out, std::size_t& read);
    // Encrypts all of `data` into the output buffer (memory buffers never refuse a write).
    [[nodiscard]] Status write(std::span<const std::byte> data);
    // Ciphertext received from the peer.
    void feed(std::span<const std::byte> ciphertext);
    // Appends the ciphertext waiting to be sent to `out`; false when there was none.
    bool take_output(std::vector<std::byte>& out);

    // Received bytes not yet returned by read(), decrypted or not: a wait for the socket to
    // become readable would not see them.
    [[nodiscard]] bool has_buffered_input() const;

    // Why the last operation failed, for a log line: OpenSSL's reason and, when the peer's
    // certificate was refused, the verification error.
    [[nodiscard]] std::string error() const { return error_; }
    // The peer certificate's CommonName when one was presented and verified.
    [[nodiscard]] std::optional<std::string> peer_common_name() const;
    // The protocol the handshake agreed through ALPN; empty when none.
    [[nodiscard]] std::string_view alpn() const;
    // "TLSv1.3/TLS_AES_256_GCM_SHA384", as SHOW CLIENTS' tls column shows it.
    [[nodiscard]] std::string description() const;

private:
    explicit TlsEngine(SSL* ssl);
    Status status_of(int result);

    SSL* ssl_;
    BIO* input_;  // owned by ssl_
    BIO* output_; // owned by ssl_
    std::string error_;
};

} // namespace proxy

// The OpenSSL contexts built from the client_tls_* and server_tls_* settings: certificates, CA,
// protocol versions and ciphers. Built at startup and again on every RELOAD, so renewed
// certificate files take effect for new connections while running ones keep their session.
#pragma once

#include "proxy/config.hpp"

#include <openssl/types.h>

#include <boost/system/result.hpp>

#include <memory>
#include <mutex>
#include <string>

namespace proxy {

struct TlsContexts {
    // For clients connecting to pgmarina; null when client_tls_sslmode is disable.
    std::shared_ptr<SSL_CTX> clients;
    TlsMode client_mode = TlsMode::disable;
    // For pgmarina connecting to servers; null when server_tls_sslmode is disable.
    std::shared_ptr<SSL_CTX> servers;
    TlsMode server_mode = TlsMode::disable;
};

// The contexts `settings` ask for, or what is wrong with them ("client_tls_cert_file
// /etc/x.pem: No such file or directory").
[[nodiscard]] boost::system::result<std::shared_ptr<const TlsContexts>, std::string>
make_tls_contexts(const Settings& settings);

// The contexts in force, read by new sessions and new server connections on every worker and
// replaced by RELOAD. A connection keeps the context it started with (OpenSSL counts the
// references), so a reload never disturbs a running session.
class CurrentTls {
public:
    explicit CurrentTls(std::shared_ptr<const TlsContexts> contexts)
        : contexts_(std::move(contexts)) {}

    [[nodiscard]] std::shared_ptr<const TlsContexts> get() const {
        std::lock_guard lock{mutex_};
        return contexts_;
    }
    void replace(std::shared_ptr<const TlsContexts> contexts) {
        std::lock_guard lock{mutex_};
        contexts_ = std::move(contexts);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const TlsContexts> contexts_;
};

} // namespace proxy

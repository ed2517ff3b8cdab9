#include "proxy/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <sstream>

namespace proxy {
namespace {

using Context = std::shared_ptr<SSL_CTX>;
using ContextResult = boost::system::result<Context, std::string>;

// Every cipher offered by "default": AEAD only, with forward secrecy (TLS 1.2; TLS 1.3 has only
// such suites anyway).
constexpr const char* default_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20";

// PostgreSQL's ALPN protocol name (protocol docs, "SSL Session Encryption"), length-prefixed.
constexpr std::array<unsigned char, 11> postgresql_alpn{10,  'p', 'o', 's', 't', 'g',
                                                        'r', 'e', 's', 'q', 'l'};

std::string openssl_error(std::string_view what) {
    std::string text(what);
    if (const unsigned long code = ERR_peek_last_error()) {
        char buffer[256];
        ERR_error_string_n(code, buffer, sizeof buffer);
        text += ": " + std::string(buffer);
    }
    ERR_clear_error();
    return text;
}

// "secure" (PgBouncer's default), or a list of tlsv1.2 and tlsv1.3. Older versions are not
// offered at all: the issue and current guidance both set 1.2 as the floor.
boost::system::result<std::pair<int, int>, std::string> protocol_range(std::string_view key,
                                                                       const std::string& text) {
    if (text == "secure") return std::pair{TLS1_2_VERSION, TLS1_3_VERSION};
    int lowest = 0;
    int highest = 0;
    std::string item;
    std::istringstream items(text);
    while (std::getline(items, item, ',')) {
        std::erase(item, ' ');
        int version = 0;
        if (item == "tlsv1.2") {
            version = TLS1_2_VERSION;
        } else if (item == "tlsv1.3") {
            version = TLS1_3_VERSION;
        } else {
            return std::string(key) + " \"" + text +
                   "\": expected secure, tlsv1.2 or tlsv1.3 (TLS below 1.2 is not offered)";
        }
        lowest = lowest == 0 ? version : std::min(lowest, version);
        highest = std::max(highest, version);
    }
    if (lowest == 0) return std::string(key) + " is empty";
    return std::pair{lowest, highest};
}

struct ContextFiles {
    std::string_view prefix; // "client_tls" or "server_tls"
    const std::string& key_file;
    const std::string& cert_file;
    const std::string& ca_file;
    const std::string& protocols;
    const std::string& ciphers;
};

// What the two kinds of context share: versions, ciphers, certificate and CA.
ContextResult make_context(const SSL_METHOD* method, const ContextFiles& files) {
    Context context(SSL_CTX_new(method), SSL_CTX_free);
    if (!context) return openssl_error("cannot create a TLS context");
    SSL_CTX* ctx = context.get();
    const std::string prefix(files.prefix);

    auto range = protocol_range(prefix + "_protocols", files.protocols);
    if (!range) return range.error();
    SSL_CTX_set_min_proto_version(ctx, range->first);
    SSL_CTX_set_max_proto_version(ctx, range->second);
    // Renegotiation and compression are attack surface nobody needs here.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    const std::string& ciphers = files.ciphers == "default" ? default_ciphers : files.ciphers;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        return openssl_error(prefix + "_ciphers \"" + files.ciphers + "\"");
    }

    if (files.cert_file.empty() != files.key_file.empty()) {
        return prefix + "_cert_file and " + prefix + "_key_file go together";
    }
    if (!files.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
            return openssl_error(prefix + "_cert_file " + files.cert_file);
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            return openssl_error(prefix + "_key_file " + files.key_file);
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            return openssl_error(prefix + "_key_file does not match " + prefix + "_cert_file");
        }
    }
    if (!files.ca_file.empty() &&
        SSL_CTX_load_verify_locations(ctx, files.ca_file.c_str(), nullptr) != 1) {
        return openssl_error(prefix + "_ca_file " + files.ca_file);
    }
    return context;
}

// Accepts a client's ALPN offer only when it names PostgreSQL: a client that offers ALPN but
// not "postgresql" may be talking another protocol (the ALPACA cross-protocol attacks).
int select_postgresql(SSL*, const unsigned char** out, unsigned char* out_length,
                      const unsigned char* offered, unsigned int offered_length, void*) {
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_length, postgresql_alpn.data(), postgresql_alpn.size(),
                              offered, offered_length) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

ContextResult client_context(const Settings& s) {
    const ContextFiles files{"client_tls",         s.client_tls_key_file,  s.client_tls_cert_file,
                             s.client_tls_ca_file, s.client_tls_protocols, s.client_tls_ciphers};
    if (s.client_tls_key_file.empty()) {
        return "client_tls_sslmode " + std::string(to_string(s.client_tls_sslmode)) +
               " needs client_tls_key_file and client_tls_cert_file";
    }
    const bool verify =
        s.client_tls_sslmode == TlsMode::verify_ca || s.client_tls_sslmode == TlsMode::verify_full;
    if (verify && s.client_tls_ca_file.empty()) {
        return "client_tls_sslmode " + std::string(to_string(s.client_tls_sslmode)) +
               " needs client_tls_ca_file to check client certificates";
    }
    auto context = make_context(TLS_server_method(), files);
    if (!context) return context;
    SSL_CTX* ctx = context->get();
    SSL_CTX_set_alpn_select_cb(ctx, select_postgresql, nullptr);
    // Sessions are not resumed: every client is a new handshake, as with PostgreSQL.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (!s.client_tls_ca_file.empty()) {
        // Ask for a certificate whenever a CA is configured (auth_type cert needs one); only the
        // verify modes refuse a client without one.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_tls_ca_file.c_str());
        if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (verify ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           nullptr);
    }
    return context;
}

ContextResult server_context(const Settings& s) {
    const ContextFiles files{"server_tls",         s.server_tls_key_file,  s.server_tls_cert_file,
                             s.server_tls_ca_file, s.server_tls_protocols, s.server_tls_ciphers};
    auto context = make_context(TLS_client_method(), files);
    if (!context) return context;
    SSL_CTX* ctx = context->get();
    SSL_CTX_set_alpn_protos(ctx, postgresql_alpn.data(), postgresql_alpn.size());
    if (s.server_tls_sslmode == TlsMode::verify_ca ||
        s.server_tls_sslmode == TlsMode::verify_full) {
        // Without a CA file, the system's trust store (libpq's sslrootcert=system).
        if (s.server_tls_ca_file.empty() && SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return openssl_error("server_tls_ca_file is empty and the system CAs cannot be read");
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return context;
}

} // namespace

boost::system::result<std::shared_ptr<const TlsContexts>, std::string>
make_tls_contexts(const Settings& settings) {
    auto contexts = std::make_shared<TlsContexts>();
    contexts->client_mode = settings.client_tls_sslmode;
    contexts->server_mode = settings.server_tls_sslmode;
    if (settings.client_tls_sslmode != TlsMode::disable) {
        auto context = client_context(settings);
        if (!context) return context.error();
        contexts->clients = std::move(*context);
    }
    if (settings.server_tls_sslmode != TlsMode::disable) {
        auto context = server_context(settings);
        if (!context) return context.error();
        contexts->servers = std::move(*context);
    }
    return std::shared_ptr<const TlsContexts>(std::move(contexts));
}

} // namespace proxy

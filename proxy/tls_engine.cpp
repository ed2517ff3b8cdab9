#include "proxy/tls_engine.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>

#include <climits>

namespace proxy {
namespace {

// OpenSSL's calls take int lengths.
int clamp_length(std::size_t n) {
    return n > INT_MAX ? INT_MAX : static_cast<int>(n);
}

// The first error on this thread's OpenSSL queue, which is then emptied: a later operation must
// not report it again.
std::string drain_errors() {
    std::string text;
    while (const unsigned long code = ERR_get_error()) {
        if (text.empty()) {
            char buffer[256];
            ERR_error_string_n(code, buffer, sizeof buffer);
            text = buffer;
        }
    }
    return text;
}

} // namespace

std::unique_ptr<TlsEngine> TlsEngine::accept(SSL_CTX* context) {
    SSL* ssl = SSL_new(context);
    if (ssl == nullptr) return nullptr;
    SSL_set_accept_state(ssl);
    return std::unique_ptr<TlsEngine>(new TlsEngine(ssl));
}

std::unique_ptr<TlsEngine> TlsEngine::connect(SSL_CTX* context, const std::string& host,
                                              bool verify_name) {
    SSL* ssl = SSL_new(context);
    if (ssl == nullptr) return nullptr;
    std::unique_ptr<TlsEngine> engine(new TlsEngine(ssl));
    SSL_set_connect_state(ssl);
    boost::system::error_code not_an_address;
    boost::asio::ip::make_address(host, not_an_address);
    // SNI carries names only; an address in it is a protocol error for some servers.
    if (not_an_address && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return nullptr;
    if (verify_name) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        const int set = not_an_address ? X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0)
                                       : X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        if (set != 1) return nullptr;
    }
    return engine;
}

TlsEngine::TlsEngine(SSL* ssl)
    : ssl_(ssl), input_(BIO_new(BIO_s_mem())), output_(BIO_new(BIO_s_mem())) {
    // An empty input buffer means "wait for the peer", not end of file.
    BIO_set_mem_eof_return(input_, -1);
    SSL_set_bio(ssl_, input_, output_);
}

TlsEngine::~TlsEngine() {
    SSL_free(ssl_);
}

TlsEngine::Status TlsEngine::status_of(int result) {
    switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_NONE:
        return Status::ok;
    case SSL_ERROR_WANT_READ:
        return Status::want_input;
    case SSL_ERROR_ZERO_RETURN:
        return Status::closed;
    default:
        break;
    }
    error_ = drain_errors();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
        error_ += std::string(error_.empty() ? "" : ": ") + X509_verify_cert_error_string(verify);
    }
    if (error_.empty()) error_ = "TLS connection failed";
    return Status::failed;
}

TlsEngine::Status TlsEngine::handshake() {
    ERR_clear_error();
    return status_of(SSL_do_handshake(ssl_));
}

TlsEngine::Status TlsEngine::read(std::span<std::byte> out, std::size_t& read) {
    ERR_clear_error();
    read = 0;
    const int n = SSL_read(ssl_, out.data(), clamp_length(out.size()));
    if (n > 0) {
        read = static_cast<std::size_t>(n);
        return Status::ok;
    }
    return status_of(n);
}

TlsEngine::Status TlsEngine::write(std::span<const std::byte> data) {
    while (!data.empty()) {
        ERR_clear_error();
        const int n = SSL_write(ssl_, data.data(), clamp_length(data.size()));
        if (n <= 0) return status_of(n);
        data = data.subspan(static_cast<std::size_t>(n));
    }
    return Status::ok;
}

void TlsEngine::feed(std::span<const std::byte> ciphertext) {
    while (!ciphertext.empty()) {
        const int n = BIO_write(input_, ciphertext.data(), clamp_length(ciphertext.size()));
        if (n <= 0) return; // only when memory runs out; the read that follows then fails
        ciphertext = ciphertext.subspan(static_cast<std::size_t>(n));
    }
}

bool TlsEngine::take_output(std::vector<std::byte>& out) {
    const std::size_t pending = BIO_ctrl_pending(output_);
    if (pending == 0) return false;
    const std::size_t start = out.size();
    out.resize(start + pending);
    const int n = BIO_read(output_, out.data() + start, clamp_length(pending));
    out.resize(start + static_cast<std::size_t>(n > 0 ? n : 0));
    return n > 0;
}

bool TlsEngine::has_buffered_input() const {
    return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(input_) > 0;
}

std::optional<std::string> TlsEngine::peer_common_name() const {
    X509* certificate = SSL_get0_peer_certificate(ssl_);
    if (certificate == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return std::nullopt;
    X509_NAME* subject = X509_get_subject_name(certificate);
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0) return std::nullopt;
    // A name with a second CN is ambiguous: which one is the user?
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) return std::nullopt;
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
    // An embedded NUL would let "admin\0.evil" pass as "admin" to C string comparisons.
    if (name.find('\0') != std::string::npos) return std::nullopt;
    return name;
}

std::string_view TlsEngine::alpn() const {
    const unsigned char* protocol = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(ssl_, &protocol, &length);
    if (protocol == nullptr) return {};
    return {reinterpret_cast<const char*>(protocol), length};
}

std::string TlsEngine::description() const {
    return std::string(SSL_get_version(ssl_)) + "/" + SSL_get_cipher_name(ssl_);
}

} // namespace proxy

#pragma once

// A throwaway certificate authority and the certificates TLS tests need, made by the openssl
// command line (as an operator would) in a directory of the caller's. EC P-256 keys, so that
// making them takes milliseconds. Throws std::runtime_error when openssl fails.

#include <filesystem>
#include <string>
#include <string_view>

namespace support {

struct CertificateFiles {
    std::filesystem::path cert;
    std::filesystem::path key;
};

class TestAuthority {
public:
    // A new CA named `name` ("test-ca"), its files DIR/NAME.crt and DIR/NAME.key.
    TestAuthority(std::filesystem::path dir, std::string name);

    [[nodiscard]] const std::filesystem::path& cert() const { return ca_.cert; }

    // A certificate signed by this CA for a server reachable as "localhost" and "127.0.0.1"
    // (both in subjectAltName), with CommonName `common_name`.
    [[nodiscard]] CertificateFiles server(const std::string& file_name,
                                          std::string_view common_name = "localhost") const;
    // A certificate signed by this CA for a server named only `host_name`.
    [[nodiscard]] CertificateFiles server_named(const std::string& file_name,
                                                std::string_view host_name) const;
    // A client certificate with CommonName `common_name` (what auth_type cert compares to the
    // user name).
    [[nodiscard]] CertificateFiles client(const std::string& file_name,
                                          std::string_view common_name) const;

private:
    [[nodiscard]] CertificateFiles issue(const std::string& file_name, std::string_view common_name,
                                         std::string_view extensions) const;

    std::filesystem::path dir_;
    CertificateFiles ca_;
};

} // namespace support

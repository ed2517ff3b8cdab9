#include "tests/support/test_certificates.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace support {
namespace {

void openssl(const std::string& arguments) {
    const std::string command = "openssl " + arguments + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) {
        throw std::runtime_error("failed: " + command);
    }
}

std::string quoted(const std::filesystem::path& path) {
    return "'" + path.string() + "'";
}

constexpr std::string_view new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

} // namespace

TestAuthority::TestAuthority(std::filesystem::path dir, std::string name) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    ca_ = {dir_ / (name + ".crt"), dir_ / (name + ".key")};
    openssl("req -x509 " + std::string(new_key) + " -days 2 -subj '/CN=" + name + "' -keyout " +
            quoted(ca_.key) + " -out " + quoted(ca_.cert));
}

CertificateFiles TestAuthority::server(const std::string& file_name,
                                       std::string_view common_name) const {
    return issue(file_name, common_name, "subjectAltName=DNS:localhost,IP:127.0.0.1");
}

CertificateFiles TestAuthority::server_named(const std::string& file_name,
                                             std::string_view host_name) const {
    return issue(file_name, host_name, "subjectAltName=DNS:" + std::string(host_name));
}

CertificateFiles TestAuthority::client(const std::string& file_name,
                                       std::string_view common_name) const {
    return issue(file_name, common_name, "extendedKeyUsage=clientAuth");
}

CertificateFiles TestAuthority::issue(const std::string& file_name, std::string_view common_name,
                                      std::string_view extensions) const {
    const CertificateFiles files{dir_ / (file_name + ".crt"), dir_ / (file_name + ".key")};
    const auto request = dir_ / (file_name + ".csr");
    const auto extension_file = dir_ / (file_name + ".ext");
    std::ofstream(extension_file) << extensions << "\n";
    openssl("req " + std::string(new_key) + " -subj '/CN=" + std::string(common_name) +
            "' -keyout " + quoted(files.key) + " -out " + quoted(request));
    openssl("x509 -req -days 2 -in " + quoted(request) + " -CA " + quoted(ca_.cert) + " -CAkey " +
            quoted(ca_.key) + " -CAcreateserial -extfile " + quoted(extension_file) + " -out " +
            quoted(files.cert));
    return files;
}

} // namespace support

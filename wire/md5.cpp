#include "wire/md5.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace wire::md5 {
namespace {

constexpr std::string_view prefix = "md5";
constexpr std::size_t hex_digits = 32;

// "md5" + lowercase hex of the MD5 digest of `data`.
std::string md5_hex(std::string_view data) {
    std::array<unsigned char, 16> digest{};
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_md5(), nullptr) != 1 ||
        size != digest.size()) {
        throw std::runtime_error("md5: EVP_Digest failed");
    }
    constexpr std::string_view digits = "0123456789abcdef";
    std::string out(prefix);
    for (const unsigned char b : digest) {
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

} // namespace

std::string stored_secret(std::string_view password, std::string_view user) {
    return md5_hex(std::string(password) + std::string(user));
}

bool is_stored_secret(std::string_view text) noexcept {
    return text.size() == prefix.size() + hex_digits && text.starts_with(prefix) &&
           std::ranges::all_of(text.substr(prefix.size()), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

Result<std::string> salted_response(std::string_view secret, const Salt& salt) {
    if (!is_stored_secret(secret)) {
        return errc::invalid_value;
    }
    std::string data(secret.substr(prefix.size()));
    std::ranges::transform(salt, std::back_inserter(data),
                           [](std::byte b) { return static_cast<char>(b); });
    return md5_hex(data);
}

std::string salted_response(std::string_view password, std::string_view user, const Salt& salt) {
    return *salted_response(stored_secret(password, user), salt);
}

} // namespace wire::md5

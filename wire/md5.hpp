#pragma once

// PostgreSQL's md5 password method (PostgreSQL docs, "Password Authentication" and
// AuthenticationMD5Password in "Message Formats"). The server stores
//     "md5" + hex(md5(password + user))
// and asks for
//     "md5" + hex(md5(hex(md5(password + user)) + salt))
// so the stored secret alone answers any salt: pgmarina can log in to PostgreSQL, or check a
// client, with an md5 secret from its auth_file and no plaintext. Digits are lowercase hex.

#include "wire/result.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace wire::md5 {

using Salt = std::array<std::byte, 4>;

// The form pg_authid and PgBouncer's userlist.txt hold. Throws std::runtime_error if OpenSSL
// cannot compute MD5 (a FIPS-only provider).
[[nodiscard]] std::string stored_secret(std::string_view password, std::string_view user);

// "md5" followed by 32 lowercase hex digits.
[[nodiscard]] bool is_stored_secret(std::string_view text) noexcept;

// The PasswordMessage answering AuthenticationMD5Password with `salt`; errc::invalid_value
// unless `secret` is a stored secret.
[[nodiscard]] Result<std::string> salted_response(std::string_view secret, const Salt& salt);

// The same from the plaintext password.
[[nodiscard]] std::string salted_response(std::string_view password, std::string_view user,
                                          const Salt& salt);

} // namespace wire::md5

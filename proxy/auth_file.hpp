// PgBouncer's auth_file (userlist.txt): the users clients may log in as, and their secrets.
//
// Format, as PgBouncer's load_auth_file() reads it (src/loader.c), so existing files work:
//
//     "alice" "md5d41d8cd98f00b204e9800998ecf8427e"
//     "bob"   "SCRAM-SHA-256$4096:c2FsdA==$...:..."    anything after the password is ignored
//     ; a comment
//     "say ""hi""" "plain text"                         a doubled quote is a quote
//
// Where we follow PgBouncer exactly: whitespace before a line's first character is skipped, so
// blank lines are ignored; a line whose first other character is ';' is a comment; the user
// name and the password are each in double quotes with `""` standing for `"`; anything between
// the two quoted fields, and anything after the password, is ignored; an empty password is
// kept; a user listed twice gets the password of its last line (PgBouncer's add_user() updates
// the existing user).
//
// Where we are stricter, because PgBouncer's behaviour there loses users silently:
// - A line that starts with anything else, '#' included, is an error. PgBouncer logs "broken
//   auth file" and stops reading, keeping only the users above that line; we refuse the file.
// - Both fields must be complete on their line. PgBouncer's quote search runs across newlines,
//   so a line missing its password takes the next line's user name as its password.
// - An empty user name is an error; PgBouncer adds a user nobody can log in as.
// We do not enforce PgBouncer's compile-time length limits (MAX_USERNAME, MAX_PASSWORD), which
// have changed between its versions; a longer line is read whole.
#pragma once

#include "proxy/config.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

// User name → secret, exactly as written between the quotes (after undoubling `""`).
using AuthUsers = std::map<std::string, std::string, std::less<>>;

// What a stored secret is, decided as PostgreSQL's get_password_type() does, so that a secret
// copied from pg_authid.rolpassword means the same thing here as on the server.
enum class SecretKind {
    plain,         // the password itself; also anything that is not exactly one of the others
    md5,           // "md5" followed by 32 lowercase hex digits: md5(password || user)
    scram_sha_256, // "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", base64 parts
};

[[nodiscard]] SecretKind classify_secret(std::string_view secret);

// The outcome of reading an auth_file: the users, or every problem found (never both).
class [[nodiscard]] AuthFileResult {
public:
    explicit AuthFileResult(AuthUsers users);
    explicit AuthFileResult(std::vector<ConfigError> errors);

    [[nodiscard]] bool ok() const noexcept { return errors_.empty(); }
    explicit operator bool() const noexcept { return ok(); }

    // Precondition: ok(). May be empty: a file of comments lists no users.
    [[nodiscard]] const AuthUsers& users() const noexcept { return users_; }
    // Empty when ok(). In line order.
    [[nodiscard]] const std::vector<ConfigError>& errors() const noexcept { return errors_; }

private:
    AuthUsers users_;
    std::vector<ConfigError> errors_;
};

// Parses auth_file text; `origin` names it in error messages ("origin:line:column: ...").
// Lines end in "\n" or "\r\n". Never throws on bad input.
[[nodiscard]] AuthFileResult parse_auth_file(std::string_view text, std::string_view origin);

// Reads and parses the file at `path`.
[[nodiscard]] AuthFileResult load_auth_file(const std::filesystem::path& path);

// The secret `user` authenticates with: the `password` of [users.<user>] when set, otherwise
// the auth_file's. PgBouncer has no password in its [users] section, so this precedence is ours:
// a password written in pgmarina.toml is the more specific, deliberate setting, as a user's
// pool_size is over the database's. A database's `password` is not a client's secret: it is
// what the pool's servers log in with as the database's forced `user`. std::nullopt: the user is
// unknown, which refuses the login under every auth_type, trust included (as PgBouncer).
[[nodiscard]] std::optional<std::string_view>
find_secret(const Config& config, const AuthUsers& auth_users, std::string_view user);

} // namespace proxy

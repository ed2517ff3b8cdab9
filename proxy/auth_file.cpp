#include "proxy/auth_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace proxy {

namespace {

bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// The number of bytes `text` decodes to, or nullopt when it is not padded base64.
std::optional<std::size_t> base64_decoded_size(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0) {
        return std::nullopt;
    }
    const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
    const std::string_view body = text.substr(0, text.size() - padding);
    if (!std::all_of(body.begin(), body.end(), is_base64_char)) {
        return std::nullopt;
    }
    return text.size() / 4 * 3 - padding;
}

// PostgreSQL's parse_scram_secret(): the keys must decode to SHA-256's 32 bytes, and a secret
// that does not parse is taken as a plain password, not rejected.
bool is_scram_secret(std::string_view secret) {
    constexpr std::string_view prefix = "SCRAM-SHA-256$";
    if (!secret.starts_with(prefix)) {
        return false;
    }
    secret.remove_prefix(prefix.size());
    const auto colon = secret.find(':');
    const auto dollar = secret.find('$');
    if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar) {
        return false;
    }
    const std::string_view iterations = secret.substr(0, colon);
    const std::string_view salt = secret.substr(colon + 1, dollar - colon - 1);
    const std::string_view keys = secret.substr(dollar + 1);
    const auto key_colon = keys.find(':');
    if (key_colon == std::string_view::npos) {
        return false;
    }
    const std::string_view stored_key = keys.substr(0, key_colon);
    const std::string_view server_key = keys.substr(key_colon + 1);
    return !iterations.empty() && iterations.size() <= 10 &&
           std::all_of(iterations.begin(), iterations.end(),
                       [](char c) { return c >= '0' && c <= '9'; }) &&
           base64_decoded_size(salt).has_value() && base64_decoded_size(stored_key) == 32u &&
           base64_decoded_size(server_key) == 32u;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Reads a quoted field whose opening quote is at `line[pos]`; on success `pos` is just past the
// closing quote. `""` inside the field is one `"`, as PgBouncer's find_quote()/copy_quoted().
std::optional<std::string> read_quoted(std::string_view line, std::size_t& pos) {
    std::string value;
    std::size_t at = pos + 1;
    while (true) {
        const std::size_t quote = line.find('"', at);
        if (quote == std::string_view::npos) {
            return std::nullopt;
        }
        value.append(line.substr(at, quote - at));
        if (quote + 1 < line.size() && line[quote + 1] == '"') {
            value.push_back('"');
            at = quote + 2;
            continue;
        }
        pos = quote + 1;
        return value;
    }
}

} // namespace

SecretKind classify_secret(std::string_view secret) {
    constexpr std::size_t md5_length = 35; // "md5" + 32 hex digits
    if (secret.size() == md5_length && secret.starts_with("md5") &&
        std::all_of(secret.begin() + 3, secret.end(), is_lower_hex)) {
        return SecretKind::md5;
    }
    if (is_scram_secret(secret)) {
        return SecretKind::scram_sha_256;
    }
    return SecretKind::plain;
}

AuthFileResult::AuthFileResult(AuthUsers users) : users_(std::move(users)) {}

AuthFileResult::AuthFileResult(std::vector<ConfigError> errors) : errors_(std::move(errors)) {}

AuthFileResult parse_auth_file(std::string_view text, std::string_view origin) {
    AuthUsers users;
    std::vector<ConfigError> errors;
    std::uint32_t line_number = 0;
    auto error = [&](std::size_t pos, std::string message) {
        errors.push_back(ConfigError{std::string(origin), line_number,
                                     static_cast<std::uint32_t>(pos + 1), std::move(message)});
    };
    while (!text.empty()) {
        ++line_number;
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);

        std::size_t pos = 0;
        while (pos < line.size() && is_space(line[pos])) {
            ++pos;
        }
        if (pos == line.size() || line[pos] == ';') {
            continue;
        }
        if (line[pos] != '"') {
            error(pos, "expected a quoted user name: \"user\" \"password\" (comments start with "
                       "';'; PgBouncer stops reading the file here)");
            continue;
        }
        const std::size_t user_pos = pos;
        auto user = read_quoted(line, pos);
        if (!user) {
            error(user_pos, "user name has no closing quote on this line");
            continue;
        }
        if (user->empty()) {
            error(user_pos, "empty user name");
            continue;
        }
        const std::size_t password_pos = line.find('"', pos);
        if (password_pos == std::string_view::npos) {
            error(pos, "missing quoted password after user name \"" + *user + "\"");
            continue;
        }
        pos = password_pos;
        auto password = read_quoted(line, pos);
        if (!password) {
            error(password_pos, "password has no closing quote on this line");
            continue;
        }
        users.insert_or_assign(std::move(*user), std::move(*password));
    }
    if (!errors.empty()) {
        return AuthFileResult(std::move(errors));
    }
    return AuthFileResult(std::move(users));
}

AuthFileResult load_auth_file(const std::filesystem::path& path) {
    auto text = read_config_file(path);
    if (!text) return AuthFileResult(std::vector{text.error()});
    return parse_auth_file(*text, path.string());
}

std::optional<std::string_view> find_secret(const Config& config, const AuthUsers& auth_users,
                                            std::string_view user) {
    if (auto found = config.users.find(user);
        found != config.users.end() && found->second.password) {
        return *found->second.password;
    }
    if (auto found = auth_users.find(user); found != auth_users.end()) {
        return found->second;
    }
    return std::nullopt;
}

} // namespace proxy

#include "proxy/pgbouncer_ini.hpp"

#include <algorithm>
#include <cctype>

namespace proxy::pgbouncer {

namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_blank(text.back()))
        text.remove_suffix(1);
    return text;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// A value or key wholly in double quotes, without them.
std::string_view unquote(std::string_view text) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        return text.substr(1, text.size() - 2);
    }
    return text;
}

} // namespace

IniFile parse_ini(std::string_view text) {
    IniFile file;
    std::string section;
    std::uint32_t number = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find('\n', pos);
        std::string_view line = trim(text.substr(pos, end - pos));
        pos = end == std::string_view::npos ? text.size() : end + 1;
        ++number;
        if (line.empty() || line.front() == ';' || line.front() == '#') continue;
        if (line.front() == '[') {
            const auto close = line.find(']');
            if (close == std::string_view::npos || !trim(line.substr(close + 1)).empty()) {
                file.problems.push_back({number, "a section header must be [name]"});
            } else {
                section = lower(trim(line.substr(1, close - 1)));
            }
        } else if (line.starts_with("%include")) {
            std::string_view name = trim(line.substr(std::string_view("%include").size()));
            file.includes.push_back({section, "%include", std::string(unquote(name)), number});
        } else if (const auto equals = line.find('='); equals == std::string_view::npos) {
            file.problems.push_back({number, "not a 'key = value' line"});
        } else {
            std::string_view key = unquote(trim(line.substr(0, equals)));
            std::string_view value = unquote(trim(line.substr(equals + 1)));
            if (key.empty()) {
                file.problems.push_back({number, "a line without a key before '='"});
            } else {
                file.entries.push_back({section,
                                        section == "pgbouncer" ? lower(key) : std::string(key),
                                        std::string(value), number});
            }
        }
    }
    return file;
}

ConnString parse_connection_string(std::string_view text) {
    ConnString out;
    std::size_t i = 0;
    auto skip_blanks = [&] {
        while (i < text.size() && (is_blank(text[i]) || text[i] == '\n'))
            ++i;
    };
    for (;;) {
        skip_blanks();
        if (i == text.size()) break;
        const std::size_t key_start = i;
        while (i < text.size() && text[i] != '=' && !is_blank(text[i]))
            ++i;
        std::string key = lower(text.substr(key_start, i - key_start));
        skip_blanks();
        if (key.empty() || i == text.size() || text[i] != '=') {
            out.error = "expected key=value at '" + std::string(text.substr(key_start)) + "'";
            return out;
        }
        ++i; // '='
        skip_blanks();
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            ++i;
            bool closed = false;
            while (i < text.size()) {
                const char c = text[i];
                if (c == '\\' && i + 1 < text.size()) {
                    value += text[i + 1];
                    i += 2;
                } else if (c == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
                    value += '\'';
                    i += 2;
                } else if (c == '\'') {
                    ++i;
                    closed = true;
                    break;
                } else {
                    value += c;
                    ++i;
                }
            }
            if (!closed) {
                out.error = "the quoted value of '" + key + "' has no closing quote";
                return out;
            }
        } else {
            while (i < text.size() && !is_blank(text[i]))
                value += text[i++];
        }
        out.params.push_back({std::move(key), std::move(value)});
    }
    return out;
}

} // namespace proxy::pgbouncer

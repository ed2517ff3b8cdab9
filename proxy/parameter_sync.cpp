#include "proxy/parameter_sync.hpp"

#include <algorithm>

namespace proxy {

namespace {

constexpr std::string_view search_path = "search_path";

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

std::optional<std::size_t> index_of(std::string_view name) {
    for (std::size_t i = 0; i < tracked_parameters.size(); ++i) {
        if (equal_ignoring_case(tracked_parameters[i], name)) {
            return i;
        }
    }
    return std::nullopt;
}

// isspace() in the C locale, which pg_split_opts() uses; also PostgreSQL's scanner_isspace(),
// which SplitIdentifierString() uses (it includes '\v' since PostgreSQL 16).
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// `value` as an SQL string literal. With standard_conforming_strings on (the default since
// PostgreSQL 9.1, and what every server we target runs with) a backslash in '...' is an ordinary
// character; with it off it escapes. E'...' with doubled backslashes means the same either way,
// so it is used whenever a backslash appears, and the plain form otherwise.
std::string string_literal(std::string_view value) {
    const bool has_backslash = value.find('\\') != std::string_view::npos;
    std::string out = has_backslash ? "E'" : "'";
    for (char c : value) {
        if (c == '\'' || (c == '\\' && has_backslash)) {
            out.push_back(c);
        }
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

// search_path as PostgreSQL's SplitIdentifierString() reads it: names separated by commas and
// optional whitespace; a name in double quotes is taken as is ("" is one quote), any other is
// lowercased. std::nullopt for what PostgreSQL refuses (an unclosed quote, an empty unquoted
// name, a trailing comma, text after a quoted name). The empty string is the empty list.
std::optional<std::vector<std::string>> split_identifier_list(std::string_view text) {
    std::vector<std::string> names;
    std::size_t pos = 0;
    auto skip_space = [&] {
        while (pos < text.size() && is_space(text[pos])) {
            ++pos;
        }
    };
    skip_space();
    if (pos == text.size()) {
        return names;
    }
    while (true) {
        std::string name;
        if (text[pos] == '"') {
            ++pos;
            while (true) {
                const std::size_t quote = text.find('"', pos);
                if (quote == std::string_view::npos) {
                    return std::nullopt;
                }
                name.append(text.substr(pos, quote - pos));
                pos = quote + 1;
                if (pos < text.size() && text[pos] == '"') {
                    name.push_back('"');
                    ++pos;
                    continue;
                }
                break;
            }
        } else {
            const std::size_t start = pos;
            while (pos < text.size() && text[pos] != ',' && !is_space(text[pos])) {
                name.push_back(ascii_lower(text[pos]));
                ++pos;
            }
            if (pos == start) {
                return std::nullopt;
            }
        }
        names.push_back(std::move(name));
        skip_space();
        if (pos == text.size()) {
            return names;
        }
        if (text[pos] != ',') {
            return std::nullopt;
        }
        ++pos;
        skip_space();
    }
}

// What follows "SET search_path=": each schema as its own string literal. search_path is
// GUC_LIST_QUOTE, so PostgreSQL quotes every list item as an identifier when it stores it
// (flatten_set_variable_args): '$user' becomes "$user", 'Sales' stays "Sales". The value as one
// literal, as it is reported ("$user", public), would instead become ONE schema named
// '"$user", public' (the Odyssey #809 re-quoting bug); the value pasted unquoted would be SQL
// injection (CVE-2025-12819). The empty list is written '': PostgreSQL stores it as "", a schema
// name nobody can create, so it finds the same (no) schemas as the empty list, and the two
// compare equal here.
std::optional<std::string> search_path_sql(std::string_view text) {
    auto names = split_identifier_list(text);
    if (!names) {
        return std::nullopt;
    }
    if (names->empty()) {
        return string_literal("");
    }
    std::string out;
    for (const std::string& name : *names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += string_literal(name);
    }
    return out;
}

// Reads `name=value` as PostgreSQL's ParseLongOption(): '-' in the name means '_'.
std::optional<StartupOption> long_option(std::string_view text) {
    const std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) {
        return std::nullopt;
    }
    StartupOption option{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
    std::replace(option.name.begin(), option.name.end(), '-', '_');
    return option;
}

} // namespace

bool ParameterSet::set(std::string_view name, std::string_view value) {
    const auto index = index_of(name);
    if (!index) {
        return false;
    }
    std::optional<Value>& slot = values_[*index];
    if (tracked_parameters[*index] == search_path) {
        auto sql = search_path_sql(value);
        if (!sql) {
            slot.reset();
            return false;
        }
        slot = Value{std::string(value), std::move(*sql)};
    } else {
        slot = Value{std::string(value), string_literal(value)};
    }
    return true;
}

std::optional<std::string_view> ParameterSet::get(std::string_view name) const {
    const auto index = index_of(name);
    if (!index || !values_[*index]) {
        return std::nullopt;
    }
    return values_[*index]->text;
}

std::vector<std::string> learn_startup(ParameterSet& client,
                                       const wire::fe::StartupMessage& startup) {
    std::vector<std::string> not_learned;
    if (auto options = startup.parameter("options")) {
        auto settings = parse_startup_options(*options);
        bool learned_all = settings.has_value();
        if (settings) {
            for (const StartupOption& setting : *settings) {
                learned_all = client.set(setting.name, setting.value) && learned_all;
            }
        }
        if (!learned_all) {
            not_learned.emplace_back("options");
        }
    }
    for (const wire::fe::Parameter& parameter : startup.parameters) {
        // The protocol's own keys, compared exactly as PostgreSQL's ProcessStartupPacket() does.
        if (parameter.name == "user" || parameter.name == "database" ||
            parameter.name == "options") {
            continue;
        }
        if (!client.set(parameter.name, parameter.value)) {
            not_learned.emplace_back(parameter.name);
        }
    }
    return not_learned;
}

void learn_parameter_status(ParameterSet& set, const wire::be::ParameterStatus& status) {
    set.set(status.name, status.value);
}

std::optional<std::vector<StartupOption>> parse_startup_options(std::string_view options) {
    // pg_split_opts(): a backslash takes the next character literally, whitespace included; a
    // backslash at the very end is dropped.
    std::vector<std::string> words;
    std::size_t pos = 0;
    while (true) {
        while (pos < options.size() && is_space(options[pos])) {
            ++pos;
        }
        if (pos == options.size()) {
            break;
        }
        std::string word;
        bool escaped = false;
        for (; pos < options.size(); ++pos) {
            const char c = options[pos];
            if (!escaped && is_space(c)) {
                break;
            }
            if (!escaped && c == '\\') {
                escaped = true;
                continue;
            }
            escaped = false;
            word.push_back(c);
        }
        words.push_back(std::move(word));
    }

    std::vector<StartupOption> settings;
    for (std::size_t i = 0; i < words.size(); ++i) {
        std::string_view word = words[i];
        std::optional<StartupOption> setting;
        if (word.starts_with("--") && word.size() > 2) {
            setting = long_option(word.substr(2));
        } else if (word.starts_with("-c") && word.size() > 2) {
            setting = long_option(word.substr(2));
        } else if (word == "-c" && i + 1 < words.size()) {
            setting = long_option(words[++i]);
        }
        if (!setting) {
            return std::nullopt;
        }
        settings.push_back(std::move(*setting));
    }
    return settings;
}

std::string build_sync_query(const ParameterSet& client, const ParameterSet& server) {
    std::string query;
    for (std::size_t i = 0; i < tracked_parameters.size(); ++i) {
        const auto& wanted = client.values_[i];
        const auto& current = server.values_[i];
        if (!wanted) {
            continue;
        }
        if (current) {
            const bool same = tracked_parameters[i] == search_path
                                  ? wanted->sql_text == current->sql_text
                                  : equal_ignoring_case(wanted->text, current->text);
            if (same) {
                continue;
            }
        }
        query += "SET ";
        query += tracked_parameters[i];
        query += '=';
        query += wanted->sql_text;
        query += ';';
    }
    return query;
}

bool sync_sets_unreported(const ParameterSet& client, const ParameterSet& server) {
    for (std::size_t i = 0; i < tracked_parameters.size(); ++i) {
        if (client.values_[i] && !server.values_[i]) return true;
    }
    return false;
}

} // namespace proxy

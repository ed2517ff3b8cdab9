#include "proxy/config_values.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <span>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace proxy {

namespace {

struct Unit {
    std::string_view name;
    std::uint64_t scale; // microseconds or bytes per unit
};

// Largest first, so that formatting picks the largest exact unit.
constexpr std::array<Unit, 6> time_units{{
    {"d", 86'400'000'000},
    {"h", 3'600'000'000},
    {"min", 60'000'000},
    {"s", 1'000'000},
    {"ms", 1'000},
    {"us", 1},
}};

constexpr std::array<Unit, 5> size_units{{
    {"TB", 1ULL << 40},
    {"GB", 1ULL << 30},
    {"MB", 1ULL << 20},
    {"kB", 1ULL << 10},
    {"B", 1},
}};

constexpr std::string_view time_unit_list = "us, ms, s, min, h or d";
constexpr std::string_view size_unit_list = "B, kB, MB, GB or TB";

constexpr auto max_micros = static_cast<double>(std::numeric_limits<Duration::rep>::max());

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Splits "1.5 h" into the number "1.5" and the unit "h". The number is digits with at most one
// '.' between digits; anything else (signs, exponents, "inf") is left in the unit part and so
// rejected by the caller's unit lookup.
std::pair<std::string_view, std::string_view> split_number(std::string_view text, bool fraction) {
    std::size_t i = 0;
    while (i < text.size() && is_digit(text[i])) {
        ++i;
    }
    if (fraction && i > 0 && i + 1 < text.size() && text[i] == '.' && is_digit(text[i + 1])) {
        ++i;
        while (i < text.size() && is_digit(text[i])) {
            ++i;
        }
    }
    std::string_view number = text.substr(0, i);
    std::string_view unit = text.substr(i);
    while (!unit.empty() && unit.front() == ' ') {
        unit.remove_prefix(1);
    }
    return {number, unit};
}

const Unit* find_unit(std::span<const Unit> units, std::string_view name) {
    auto it =
        std::find_if(units.begin(), units.end(), [&](const Unit& u) { return u.name == name; });
    return it == units.end() ? nullptr : &*it;
}

std::string format_with_units(std::uint64_t value, std::span<const Unit> units) {
    for (const Unit& unit : units) {
        if (value % unit.scale == 0) {
            return std::to_string(value / unit.scale) + std::string(unit.name);
        }
    }
    return std::to_string(value);
}

bool valid_ipv4(const std::string& text) {
    in_addr addr{};
    return inet_pton(AF_INET, text.c_str(), &addr) == 1;
}

bool valid_ipv6(const std::string& text) {
    in6_addr addr{};
    return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

// RFC 1123 host names, plus '_' which container and service names use in practice.
bool valid_dns_name(std::string_view name) {
    if (name.ends_with('.')) {
        name.remove_suffix(1);
    }
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t end = name.find('.', start);
        if (end == std::string_view::npos) {
            end = name.size();
        }
        std::string_view label = name.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (char c : label) {
            bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                      c == '_';
            if (!ok) {
                return false;
            }
        }
        start = end + 1;
    }
    return true;
}

std::optional<std::uint16_t> parse_port(std::string_view text, std::string_view address,
                                        std::string& error) {
    if (text.empty()) {
        error = "missing port after ':' in " + quote_string(address);
        return std::nullopt;
    }
    if (!std::all_of(text.begin(), text.end(), is_digit)) {
        error = "port in " + quote_string(address) + " is not a number";
        return std::nullopt;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || value < 1 || value > 65535) {
        error = "port " + std::string(text) + " in " + quote_string(address) +
                " is out of range 1-65535";
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

} // namespace

std::string quote_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            constexpr std::string_view hex = "0123456789ABCDEF";
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string_view to_string(PoolMode mode) {
    return EnumNames<PoolMode>::names.at(static_cast<std::size_t>(mode));
}

std::string_view to_string(AuthType type) {
    return EnumNames<AuthType>::names.at(static_cast<std::size_t>(type));
}

std::string_view to_string(Routing routing) {
    return EnumNames<Routing>::names.at(static_cast<std::size_t>(routing));
}

std::string_view to_string(LoadBalance balance) {
    return EnumNames<LoadBalance>::names.at(static_cast<std::size_t>(balance));
}

std::string_view to_string(ReadConsistency consistency) {
    return EnumNames<ReadConsistency>::names.at(static_cast<std::size_t>(consistency));
}

std::string_view to_string(TlsMode mode) {
    return EnumNames<TlsMode>::names.at(static_cast<std::size_t>(mode));
}

std::string Endpoint::to_string() const {
    std::string port_text = std::to_string(port);
    if (host.find(':') != std::string::npos) {
        return "[" + host + "]:" + port_text;
    }
    return host + ":" + port_text;
}

std::optional<Duration> duration_from_seconds(double seconds, std::string& error) {
    if (!std::isfinite(seconds)) {
        error = "a duration must be a finite number of seconds";
        return std::nullopt;
    }
    if (seconds < 0) {
        error = "a duration must not be negative";
        return std::nullopt;
    }
    double micros = std::round(seconds * 1e6);
    if (micros >= max_micros) {
        error = "duration is too long";
        return std::nullopt;
    }
    return Duration{static_cast<Duration::rep>(micros)};
}

std::optional<Duration> duration_from_seconds(std::int64_t seconds, std::string& error) {
    if (seconds < 0) {
        error = "a duration must not be negative";
        return std::nullopt;
    }
    if (seconds > std::numeric_limits<Duration::rep>::max() / 1'000'000) {
        error = "duration is too long";
        return std::nullopt;
    }
    return Duration{seconds * 1'000'000};
}

std::optional<Duration> parse_duration(std::string_view text, std::string& error) {
    auto [number, unit_name] = split_number(text, true);
    if (number.empty()) {
        error = "expected a duration such as \"30s\" or \"500ms\", got " + quote_string(text);
        return std::nullopt;
    }
    if (unit_name.empty()) {
        error = "duration " + quote_string(text) + " needs a unit (" + std::string(time_unit_list) +
                "), or write the number of seconds without quotes";
        return std::nullopt;
    }
    const Unit* unit = find_unit(time_units, unit_name);
    if (unit == nullptr) {
        error = "unknown duration unit '" + std::string(unit_name) + "' in " + quote_string(text) +
                " (use " + std::string(time_unit_list) + ")";
        return std::nullopt;
    }
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value,
                                     std::chars_format::fixed);
    double micros = std::round(value * static_cast<double>(unit->scale));
    if (ec != std::errc{} || micros >= max_micros) {
        error = "duration " + quote_string(text) + " is too long";
        return std::nullopt;
    }
    return Duration{static_cast<Duration::rep>(micros)};
}

std::string format_duration(Duration value) {
    if (value.count() == 0) {
        return "0s";
    }
    return format_with_units(static_cast<std::uint64_t>(value.count()), time_units);
}

std::optional<ByteSize> parse_size(std::string_view text, std::string& error) {
    auto [number, unit_name] = split_number(text, false);
    if (number.empty()) {
        error = "expected a size such as \"64kB\" or \"1MB\", got " + quote_string(text);
        return std::nullopt;
    }
    if (unit_name.empty()) {
        error = "size " + quote_string(text) + " needs a unit (" + std::string(size_unit_list) +
                "), or write the number of bytes without quotes";
        return std::nullopt;
    }
    const Unit* unit = find_unit(size_units, unit_name);
    if (unit == nullptr) {
        error = "unknown size unit '" + std::string(unit_name) + "' in " + quote_string(text) +
                " (use " + std::string(size_unit_list) +
                "; units are case-sensitive as in PostgreSQL)";
        return std::nullopt;
    }
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc{} || value > std::numeric_limits<std::uint64_t>::max() / unit->scale) {
        error = "size " + quote_string(text) + " is too large";
        return std::nullopt;
    }
    return ByteSize{value * unit->scale};
}

std::string format_size(ByteSize value) {
    if (value.bytes == 0) {
        return "0";
    }
    return format_with_units(value.bytes, std::span(size_units).first(size_units.size() - 1));
}

std::optional<Endpoint> parse_endpoint(std::string_view text, AddressRules rules,
                                       std::string& error) {
    if (text.empty()) {
        error = "address must not be empty";
        return std::nullopt;
    }
    std::string host;
    std::string_view rest; // "" or ":port"
    if (text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos) {
            error = "missing ']' after the IPv6 address in " + quote_string(text);
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        rest = text.substr(close + 1);
        if (!valid_ipv6(host)) {
            error = "invalid IPv6 address '" + host + "' in " + quote_string(text);
            return std::nullopt;
        }
        if (!rest.empty() && rest.front() != ':') {
            error = "expected ':' after ']' in " + quote_string(text);
            return std::nullopt;
        }
    } else {
        std::size_t colon = text.find(':');
        if (colon != std::string_view::npos &&
            text.find(':', colon + 1) != std::string_view::npos) {
            error =
                "IPv6 addresses must be in brackets, as in \"[::1]:5432\": " + quote_string(text);
            return std::nullopt;
        }
        host = std::string(text.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
        bool numeric = !host.empty() && std::all_of(host.begin(), host.end(),
                                                    [](char c) { return is_digit(c) || c == '.'; });
        if (host == "*") {
            if (!rules.wildcard) {
                error = quote_string(text) +
                        " is not a server address; \"*\" (every local address) is for listening";
                return std::nullopt;
            }
        } else if (numeric ? !valid_ipv4(host) : !valid_dns_name(host)) {
            error = (numeric ? "invalid IPv4 address '" : "invalid host name '") + host + "' in " +
                    quote_string(text);
            return std::nullopt;
        }
    }
    if (rest.empty()) {
        if (rules.default_port == 0) {
            error = "missing port in " + quote_string(text) + " (write \"" + std::string(text) +
                    ":PORT\")";
            return std::nullopt;
        }
        return Endpoint{std::move(host), rules.default_port};
    }
    auto port = parse_port(rest.substr(1), text, error);
    if (!port) {
        return std::nullopt;
    }
    return Endpoint{std::move(host), *port};
}

} // namespace proxy

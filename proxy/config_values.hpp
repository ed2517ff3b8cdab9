// Text forms of configuration values: durations, sizes, addresses and enum names.
//
// Pure functions on strings, with no TOML in sight, so every accepted and rejected spelling can
// be tested directly. A parser returns the value, or nullopt with `error` saying why.
#pragma once

#include "proxy/config.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace proxy {

// The names of an enum's values as written in the file, indexed by the underlying value.
template <class E>
struct EnumNames;

template <>
struct EnumNames<PoolMode> {
    static constexpr std::array<std::string_view, 3> names{"session", "transaction", "statement"};
};

template <>
struct EnumNames<AuthType> {
    static constexpr std::array<std::string_view, 6> names{"scram-sha-256", "md5",  "plain",
                                                           "trust",         "cert", "hba"};
};

template <>
struct EnumNames<Routing> {
    static constexpr std::array<std::string_view, 3> names{"primary_only", "read_write_split",
                                                           "replicas_only"};
};

template <>
struct EnumNames<LoadBalance> {
    static constexpr std::array<std::string_view, 2> names{"round_robin", "least_connections"};
};

template <>
struct EnumNames<ReadConsistency> {
    static constexpr std::array<std::string_view, 3> names{"lsn", "sticky", "none"};
};

template <>
struct EnumNames<TlsMode> {
    static constexpr std::array<std::string_view, 6> names{"disable", "allow",     "prefer",
                                                           "require", "verify-ca", "verify-full"};
};

template <class E>
[[nodiscard]] std::optional<E> parse_enum(std::string_view text) {
    const auto& names = EnumNames<E>::names;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == text) {
            return static_cast<E>(i);
        }
    }
    return std::nullopt;
}

// `text` as a TOML basic string: in quotes, with quotes, backslashes and control characters
// escaped. Also how error messages quote what the file said.
[[nodiscard]] std::string quote_string(std::string_view text);

// A number of seconds as PgBouncer writes timeouts ("5", "0.5"); must be finite and >= 0.
[[nodiscard]] std::optional<Duration> duration_from_seconds(double seconds, std::string& error);
[[nodiscard]] std::optional<Duration> duration_from_seconds(std::int64_t seconds,
                                                            std::string& error);

// "500ms", "30s", "1.5h": a non-negative decimal number and one of PostgreSQL's time units
// (us, ms, s, min, h, d), optionally separated by spaces.
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text, std::string& error);

// The largest unit that represents `value` exactly: "0s", "500ms", "30s", "2min", "1h".
[[nodiscard]] std::string format_duration(Duration value);

// "64kB", "1MB": a non-negative integer and one of PostgreSQL's memory units (B, kB, MB, GB, TB;
// powers of 1024, case-sensitive as in postgresql.conf).
[[nodiscard]] std::optional<ByteSize> parse_size(std::string_view text, std::string& error);

// The largest unit that represents `value` exactly ("4kB", "1MB"), or the bare number of bytes
// when no unit does ("2147483647").
[[nodiscard]] std::string format_size(ByteSize value);

// What an address may look like where a key takes one.
struct AddressRules {
    std::uint16_t default_port = 0; // used when the port is left out; 0 makes it required
    bool wildcard = false;          // "*" (every local address, PgBouncer's spelling) allowed
};

// "host:port", "host", "[v6]:port" or "[v6]". The host is an IPv4 literal, a bracketed IPv6
// literal, a DNS name, or "*" where the rules allow it.
[[nodiscard]] std::optional<Endpoint> parse_endpoint(std::string_view text, AddressRules rules,
                                                     std::string& error);

} // namespace proxy

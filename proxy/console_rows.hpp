// Pieces the console's tables are built from (internal to console_*.cpp).
#pragma once

#include "proxy/admin_reply.hpp"
#include "proxy/config.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

struct Runtime;

// A table whose columns are int8 except those named in `text_columns`.
[[nodiscard]] Table make_table(const std::vector<std::string>& names,
                               std::initializer_list<std::string_view> text_columns);

template <class Integer>
[[nodiscard]] Cell number(Integer value) {
    return std::to_string(value);
}

[[nodiscard]] std::int64_t seconds(Duration duration);
// PgBouncer's timestamp format: "2026-11-21 10:00:00 UTC".
[[nodiscard]] std::string timestamp(std::chrono::system_clock::time_point at);
// SHOW POOLS / SHOW DATABASES load_balance_hosts: set only for a database with several hosts.
[[nodiscard]] Cell load_balance_hosts(const Config& config, std::string_view database);
// A setting's TOML text without the quotes of a TOML string, as SHOW CONFIG prints values.
[[nodiscard]] std::string plain_setting(std::string toml);

// The tables about connections (console_connections.cpp).
[[nodiscard]] Table show_clients(Runtime& runtime);
[[nodiscard]] Table show_servers(Runtime& runtime);
[[nodiscard]] Table show_sockets(Runtime& runtime);
[[nodiscard]] Table show_hosts(Runtime& runtime);

} // namespace proxy

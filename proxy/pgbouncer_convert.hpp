// `pgmarina convert-pgbouncer`: a pgbouncer.ini (and optionally its userlist.txt) as an
// equivalent pgmarina.toml.
//
// What has a counterpart is carried over: [pgbouncer] keys of the same name and meaning (most of
// them), listen_addr + listen_port as `listen`, [databases] connection strings as one
// [databases.<name>] table each (host + port as `hosts`, reserve_pool as reserve_pool_size, ...),
// [users] settings, and userlist.txt lines as [users.<name>] password. Where PgBouncer's default
// differs from pgmarina's (pool_mode: session; listen: none), PgBouncer's is written out, so the
// converted proxy behaves as the old one did.
//
// Everything else is listed, never silently dropped: the conversion's `not_carried` (which the
// command prints on stderr and at the top of the file, as comments) names the line, the key and
// why. The TOML produced is checked with the real config loader (load_config_string) before it is
// returned; a value the loader refuses is taken out and listed with the loader's message, so the
// output always loads.
//
// Pure: text in, text out. Files named inside the ini (auth_file, TLS files) are not read.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::pgbouncer {

struct ConvertInput {
    std::string_view ini;
    std::string ini_origin = "pgbouncer.ini"; // names the file in messages
    // PgBouncer reads relative paths (auth_file, TLS files) from its working directory; they
    // become absolute against this directory, usually the ini file's. Empty: left relative.
    std::filesystem::path base_directory;
    // userlist.txt: its users and secrets become [users.<name>] password, and auth_file is not
    // carried (the users are in the TOML). std::nullopt: auth_file is kept as it is.
    std::optional<std::string_view> userlist;
    std::string userlist_origin = "userlist.txt";
};

struct Conversion {
    std::string toml;                     // the whole file, comments included; empty on errors
    std::vector<std::string> not_carried; // "pgbouncer.ini:12: logfile: why", in line order
    std::vector<std::string> notes;       // carried over, but with a change worth reading
    std::vector<std::string> errors;      // why there is no output (a userlist that is not one)
};

[[nodiscard]] Conversion convert(const ConvertInput& input);

} // namespace proxy::pgbouncer

// Reading PgBouncer's configuration syntax, for `pgmarina convert-pgbouncer`.
//
// pgbouncer.ini is an INI file as PgBouncer's parser (libusual's cfparser) reads it:
//
//     ; a comment            # also a comment (only at the start of a line)
//     [databases]
//     app = host=pg-1 port=5432 dbname=app password='it''s secret'
//     * = host=pg-1                          the fallback database
//     [pgbouncer]
//     listen_port = 6432
//     %include /etc/pgbouncer/extra.ini
//
// A value runs to the end of its line, surrounding blanks removed; a value wholly in double
// quotes loses them. Key names of [pgbouncer] are case-insensitive in PgBouncer and are
// lower-cased here; database and user names are kept as written. A [databases] value is a
// libpq-style connection string: `key=value` pairs separated by blanks, a value in single quotes
// may hold blanks, and inside it `''` or `\'` is a quote and `\\` a backslash.
//
// Pure code: text in, values out; nothing is read from disk (an %include is reported, not
// followed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::pgbouncer {

// One `key = value` line, with the section it is in ("" before any section header).
struct IniEntry {
    std::string section; // lower-cased: "databases", "pgbouncer", "users", "peers", ...
    std::string key;     // lower-cased in [pgbouncer], as written elsewhere
    std::string value;
    std::uint32_t line = 0; // 1-based
};

// A line that is neither a comment, a section header nor `key = value`.
struct IniProblem {
    std::uint32_t line = 0;
    std::string message;
};

struct IniFile {
    std::vector<IniEntry> entries;    // in file order
    std::vector<IniProblem> problems; // lines not understood, in file order
    std::vector<IniEntry> includes;   // %include lines: key "%include", value the file
};

[[nodiscard]] IniFile parse_ini(std::string_view text);

struct ConnParam {
    std::string key; // lower-cased
    std::string value;
};

// A [databases] connection string as pairs in order, or why it cannot be read.
struct ConnString {
    std::vector<ConnParam> params;
    std::optional<std::string> error;
};

[[nodiscard]] ConnString parse_connection_string(std::string_view text);

} // namespace proxy::pgbouncer

// What an admin console command produces: a table (SHOW), a bare command tag (PAUSE, RELOAD), or
// an error. The console session turns it into protocol messages; the metrics endpoint reads the
// same SHOW tables, as pgbouncer_exporter does, so that both always agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace proxy {

// The PostgreSQL type of a console column, as RowDescription announces it: drivers convert
// numbers only when the type says they are numbers (PgBouncer sends int8 and text too).
enum class ColumnType {
    text,   // oid 25
    int8,   // oid 20; values are decimal text
    float8, // oid 701; values are decimal text, in scientific notation when shorter ("1e-05")
};

struct Column {
    std::string name;
    ColumnType type = ColumnType::text;
};

using Cell = std::optional<std::string>; // std::nullopt is SQL NULL

struct Table {
    std::vector<Column> columns;
    std::vector<std::vector<Cell>> rows; // each row has columns.size() cells

    // The position of the column called `name`; std::nullopt when there is none.
    [[nodiscard]] std::optional<std::size_t> column(std::string_view name) const {
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (columns[i].name == name) return i;
        }
        return std::nullopt;
    }
};

// A command that ran. `tag` is the CommandComplete tag ("SHOW", "PAUSE", "SET", ...); `notices`
// are sent as NoticeResponse before the result (RELOAD's warnings, SHOW HELP's text).
struct AdminReply {
    std::optional<Table> table;
    std::string tag;
    std::vector<std::string> notices;
};

// A command that did not run: an ErrorResponse with this SQLSTATE; the session goes on.
struct AdminError {
    std::string sqlstate;
    std::string message;
};

using AdminOutcome = std::variant<AdminReply, AdminError>;

} // namespace proxy

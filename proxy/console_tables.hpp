// The admin console's SHOW tables, with PgBouncer 1.25's columns in PgBouncer's order
// (reference.md 1.1), built from the live state of the process. /metrics reads the same tables.
//
// Thread safety: each function takes a consistent reading of one pool at a time under that
// pool's lock; a table as a whole is not one atomic snapshot (neither is PgBouncer's).
#pragma once

#include "proxy/admin_reply.hpp"
#include "proxy/exporter_metrics.hpp"

#include <optional>
#include <string_view>

namespace proxy {

struct Runtime;

// The table SHOW `subject` (upper case) answers with; std::nullopt for an unknown subject.
[[nodiscard]] std::optional<Table> show_table(Runtime& runtime, std::string_view subject);

// The tables pgbouncer_exporter scrapes, for /metrics to be built from as the exporter would.
[[nodiscard]] ConsoleTables exporter_tables(Runtime& runtime);

} // namespace proxy

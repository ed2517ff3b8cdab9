// Keeping a server's session parameters in step with its client's: PgBouncer's varcache.
//
// In transaction pooling a client meets a different server connection at almost every
// transaction, yet expects the settings it chose at start-up (or later with SET, which the server
// reports back in ParameterStatus) to hold. So the session keeps one ParameterSet per client and
// one per server connection, and before a transaction runs on a server it sends
// build_sync_query(client, server) and swallows the replies (PgBouncer's setting_vars). A
// failing query disconnects the client ("invalid server parameter"), and the ParameterStatus
// replies are learnt into the server's set: those are the server's canonical spellings, which
// PgBouncer copies back into the client's set so the next comparison matches (#776).
//
// Only parameters the server reports with ParameterStatus (GUC_REPORT) can be tracked: a client's
// SET of any other parameter is never seen (pgbouncer#452, #1176).
#pragma once

#include "wire/be_status.hpp"
#include "wire/fe_startup.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

// The parameters we keep in step, in canonical spelling and in the order of the SETs:
// PgBouncer's default set, its default track_extra_parameters (IntervalStyle), and search_path,
// which PostgreSQL 18 reports. Replaying anything the client cannot SET (server_version,
// is_superuser, in_hot_standby, ...) would fail, so those are never tracked.
inline constexpr std::array<std::string_view, 7> tracked_parameters = {
    "DateStyle",        "client_encoding", "TimeZone",    "standard_conforming_strings",
    "application_name", "IntervalStyle",   "search_path",
};

// The values of the tracked parameters one side has; any may be unknown. Names are matched
// case-insensitively, as PostgreSQL matches setting names.
class ParameterSet {
public:
    // Records `value` for `name` and returns true, or returns false and ignores it when `name`
    // is not tracked. A search_path that is not a valid identifier list (PostgreSQL's
    // SplitIdentifierString) returns false and forgets the previous value: PostgreSQL refuses
    // such a value too, and a server value we cannot read must not be trusted to match.
    bool set(std::string_view name, std::string_view value);

    // The value recorded for `name`, or std::nullopt.
    [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const;

    friend bool operator==(const ParameterSet&, const ParameterSet&) = default;

private:
    struct Value {
        std::string text;     // as reported or sent
        std::string sql_text; // what follows "SET name=" to set it

        friend bool operator==(const Value&, const Value&) = default;
    };

    friend std::string build_sync_query(const ParameterSet& client, const ParameterSet& server);
    friend bool sync_sets_unreported(const ParameterSet& client, const ParameterSet& server);

    std::array<std::optional<Value>, tracked_parameters.size()> values_;
};

// Learns a client's parameters from its StartupMessage, and returns the names of those it did not
// learn, for the session to refuse unless ignore_startup_parameters lists them (PgBouncer). The
// protocol's own `user` and `database` are never returned. `options` is read as PostgreSQL reads
// it (see parse_startup_options) and before the other parameters, so that a parameter sent on
// its own wins over the same one in `options`, as in PostgreSQL's process_startup_options();
// "options" is returned when it holds anything we cannot learn.
[[nodiscard]] std::vector<std::string> learn_startup(ParameterSet& client,
                                                     const wire::fe::StartupMessage& startup);

// Learns a ParameterStatus a server sent; parameters that are not tracked are ignored.
void learn_parameter_status(ParameterSet& set, const wire::be::ParameterStatus& status);

// One setting from a StartupMessage's `options`.
struct StartupOption {
    std::string name;
    std::string value;

    friend bool operator==(const StartupOption&, const StartupOption&) = default;
};

// The settings in an `options` value, as PostgreSQL's pg_split_opts() and
// process_postgres_switches() read it: words are separated by unescaped whitespace, a backslash
// makes the next character literal ("-c application_name=my\ app"), and each setting is
// `-c name=value`, `-cname=value` or `--name=value`, with '-' in the name read as '_'. Other
// server switches (-e, -B, ...) are refused with std::nullopt, as is a setting without '='.
[[nodiscard]] std::optional<std::vector<StartupOption>>
parse_startup_options(std::string_view options);

// One simple query that makes the server's parameters the client's: "SET name=value;" for each
// tracked parameter the client has a value for and the server has not, or has a different one,
// in the order of tracked_parameters; "" when none differs. An empty value is a value and is set
// (pgbouncer#999: an empty application_name was not replayed). Values are compared
// case-insensitively, as PgBouncer does (so 'utf8' matches 'UTF8'), except search_path: there
// the schemas are compared after PostgreSQL's own parsing, because "Sales" and sales are two
// schemas. Values are written as string literals ('' doubles a quote; E'' with doubled
// backslashes only when the value holds one, so the literal means the same whatever the server's
// standard_conforming_strings). search_path is written as a list of quoted identifiers, never as
// one literal (see parameter_sync.cpp).
[[nodiscard]] std::string build_sync_query(const ParameterSet& client, const ParameterSet& server);

// Whether build_sync_query(client, server) sets a parameter the server has no value for: one it
// never reported (search_path before PostgreSQL 18). Its SET is then recorded nowhere, so the
// server must be reset before another client, which may never have chosen a value, gets it. A
// reported parameter needs no reset: its ParameterStatus reply updates the server's set, and
// every client has a value for it (learnt at start-up or from the welcome).
[[nodiscard]] bool sync_sets_unreported(const ParameterSet& client, const ParameterSet& server);

} // namespace proxy

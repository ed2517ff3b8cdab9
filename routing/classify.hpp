#pragma once

// Is this transaction safe on a replica? The session asks once, at the first message of a
// transaction (the text of a Query, or of the Parse that starts it), and the answer holds until
// the server reports ReadyForQuery 'I'. Unknown means primary: the classifier only says
// replica_ok when the client declared the transaction read-only or when the text proves it.
//
// What "proves" means is bounded by what text can show. A query that is replica_ok names no
// function outside the allowlist, but the objects it reads are trusted as every pooler trusts
// them: a view, an operator, a cast or a column default that calls a writing function is not
// visible here. A hot standby refuses such a write (SQLSTATE 25006), so the cost of that trust
// is an error, never a lost write.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace routing {

enum class Target : std::uint8_t {
    primary,    // only the primary may run it
    replica_ok, // a replica may run it; the router still falls back to the primary
};

// Why; the names are metrics labels (to_string).
enum class Reason : std::uint8_t {
    // replica_ok
    read_only_select,   // SELECT, WITH, VALUES or TABLE proven read-only (also under EXPLAIN)
    show,               // SHOW of a setting
    copy_to_stdout,     // COPY of a table or of a read-only query TO STDOUT
    explicit_read_only, // BEGIN / START TRANSACTION / SET TRANSACTION ... READ ONLY
    default_read_only,  // the client's default_transaction_read_only is on (see ClassifyOptions)
    empty,              // only spaces, comments and semicolons: the server answers
                        // EmptyQueryResponse, as any server would
    // either target
    hint, // a /* pgmarina:replica */ or /* pgmarina:primary */ comment (primary wins); it
          // decides for any single statement that lexes and whose parentheses balance
    // primary
    transaction_begin,     // BEGIN / START TRANSACTION not declared READ ONLY: the rest of the
                           // transaction is not known yet, so it must start where it can write
    serializable,          // READ ONLY but SERIALIZABLE, which a hot standby refuses
    transaction_control,   // COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, ...
    set_default_read_only, // changes default_transaction_read_only (see DefaultReadOnly)
    session_statement,     // SET, RESET, DISCARD, PREPARE, EXECUTE, LISTEN, cursors, ...
    write_statement,       // INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM or to a file
    utility_statement,     // DDL, maintenance, GRANT, LOCK, DO, CALL, ...
    role_probe,            // SHOW transaction_read_only / in_hot_standby: a driver finding a primary
    locking_clause,        // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
    select_into,           // SELECT ... INTO creates a table
    modifying_cte,         // INSERT, UPDATE, DELETE or MERGE inside a query
    function_not_allowed,  // calls a function that is not on the allowlist
    function_forbidden,    // calls a function that never runs on a replica (nextval, ...)
    multi_statement,       // more than one statement in the text
    unparsable,            // unterminated string, identifier or comment, a byte no token starts
                           // with, unbalanced parentheses, or a statement that breaks its grammar
    unknown_statement,     // a statement the classifier does not know
};

// What a statement does to the client's default_transaction_read_only, which decides where its
// later transactions go. The server also reports the setting in ParameterStatus (14 and later),
// which stays the authority: this is what the text says before any reply arrives.
enum class DefaultReadOnly : std::uint8_t {
    unchanged,
    on,    // SET default_transaction_read_only = on, SET SESSION CHARACTERISTICS ... READ ONLY
    off,   // ... = off, ... READ WRITE
    reset, // RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL: back to the client's startup value
};

struct Classification {
    Target target = Target::primary;
    Reason reason = Reason::unparsable;
    DefaultReadOnly default_read_only = DefaultReadOnly::unchanged;

    [[nodiscard]] static constexpr Classification
    primary(Reason reason, DefaultReadOnly change = DefaultReadOnly::unchanged) noexcept {
        return {Target::primary, reason, change};
    }
    [[nodiscard]] static constexpr Classification replica_ok(Reason reason) noexcept {
        return {Target::replica_ok, reason};
    }

    friend bool operator==(const Classification&, const Classification&) = default;
};

struct ClassifyOptions {
    // The database's read_only_functions: more functions a replica may run (see
    // classify_function for how the names match). Never overrides the forbidden list.
    std::span<const std::string> read_only_functions{};
    // The client's current default_transaction_read_only. With it on, every transaction the
    // client starts is read-only unless it says READ WRITE, and the server enforces that, so:
    // BEGIN without READ WRITE goes to a replica, and a query may call functions that are not
    // on the allowlist (a write inside them would fail on the primary too). Forbidden functions,
    // locking clauses and write statements still go to the primary.
    bool default_transaction_read_only = false;
    // The session's standard_conforming_strings (on unless the client or server turned it
    // off): whether a backslash escapes the quote in '...' strings.
    bool standard_conforming_strings = true;
};

// Pure: the same text and options always give the same answer. O(n) in the text, no heap
// allocation, no recursion on nesting depth.
[[nodiscard]] Classification classify(std::string_view sql,
                                      const ClassifyOptions& options = {}) noexcept;

[[nodiscard]] std::string_view to_string(Target target) noexcept;
[[nodiscard]] std::string_view to_string(Reason reason) noexcept;

} // namespace routing

#include "routing/classify.hpp"

#include "routing/query_scan.hpp"
#include "routing/sql_lexer.hpp"
#include "routing/token_stream.hpp"
#include "routing/transaction_statements.hpp"
#include "routing/word_list.hpp"

#include <cstddef>
#include <string_view>

namespace routing {

namespace {

// Statements decided by their first word alone.
constexpr std::string_view write_text = "delete insert merge truncate update";
constexpr std::string_view utility_text =
    "alter analyse analyze call checkpoint cluster comment create do drop grant import lock "
    "reassign refresh reindex revoke security vacuum";
constexpr std::string_view session_text =
    "close deallocate declare execute fetch listen load move notify unlisten";
// COMMIT PREPARED and ROLLBACK PREPARED (and PREPARE TRANSACTION, see classify_statement) act on
// a prepared transaction, which the primary holds. The others, at the first message of a
// transaction, have no transaction to act on: the server warns or refuses, on any server.
constexpr std::string_view transaction_text = "abort commit end release rollback savepoint";
constexpr WordList<count_words(write_text)> write_words{write_text};
constexpr WordList<count_words(utility_text)> utility_words{utility_text};
constexpr WordList<count_words(session_text)> session_words{session_text};
constexpr WordList<count_words(transaction_text)> transaction_words{transaction_text};

Reason reason_by_first_word(std::string_view word) {
    if (write_words.contains(word)) {
        return Reason::write_statement;
    }
    if (utility_words.contains(word)) {
        return Reason::utility_statement;
    }
    if (session_words.contains(word)) {
        return Reason::session_statement;
    }
    if (transaction_words.contains(word)) {
        return Reason::transaction_control;
    }
    return Reason::unknown_statement;
}

// SHOW reads a setting, which a replica has as the primary does (the session replays the
// client's), except the two that tell a standby from a primary.
Classification classify_show(TokenStream& tokens) {
    const Token name = tokens.take();
    if (is_setting(name, "transaction_read_only") || is_setting(name, "in_hot_standby")) {
        return Classification::primary(Reason::role_probe);
    }
    return Classification::replica_ok(Reason::show);
}

// Takes a parenthesized list whose '(' is next, up to its ')'.
bool skip_parenthesized(TokenStream& tokens) {
    std::size_t depth = 0;
    do {
        const Token token = tokens.take();
        if (token.kind == TokenKind::end || token.kind == TokenKind::invalid) {
            return false;
        }
        depth += token.kind == TokenKind::left_paren ? 1 : 0;
        depth -= token.kind == TokenKind::right_paren ? 1 : 0;
    } while (depth > 0);
    return true;
}

// COPY TO STDOUT only reads: of a table, or of a query that passes the same proof as a SELECT
// (COPY (SELECT nextval('s')) TO STDOUT does not). COPY FROM writes, and COPY TO a file or a
// program writes on the server's machine, which must be the one the client meant.
Classification classify_copy(TokenStream& tokens, const ClassifyOptions& options) {
    tokens.take_keyword("binary");
    Classification source = Classification::replica_ok(Reason::copy_to_stdout);
    if (tokens.peek().kind == TokenKind::left_paren) {
        tokens.take();
        source = classify_query(tokens, options, true);
        if (source.target != Target::replica_ok) {
            return source;
        }
        if (source.reason != Reason::default_read_only) {
            source.reason = Reason::copy_to_stdout;
        }
    } else {
        if (!tokens.take().is_name()) {
            return Classification::primary(Reason::unparsable);
        }
        while (tokens.peek().kind == TokenKind::dot) {
            tokens.take();
            if (!tokens.take().is_name()) {
                return Classification::primary(Reason::unparsable);
            }
        }
        if (tokens.peek().kind == TokenKind::left_paren && !skip_parenthesized(tokens)) {
            return Classification::primary(Reason::unparsable);
        }
    }
    if (tokens.take_keyword("from")) {
        return Classification::primary(Reason::write_statement);
    }
    if (!tokens.take_keyword("to")) {
        return Classification::primary(Reason::unparsable);
    }
    return tokens.take_keyword("stdout") ? source
                                         : Classification::primary(Reason::write_statement);
}

Classification classify_statement(TokenStream& tokens, const ClassifyOptions& options,
                                  bool explained);

// EXPLAIN [ANALYZE] [VERBOSE] or EXPLAIN (options), then a statement. Without ANALYZE nothing
// runs, but the planner still evaluates immutable functions with constant arguments (a writing
// function wrongly marked IMMUTABLE would run), so both forms answer what the statement would.
Classification classify_explain(TokenStream& tokens, const ClassifyOptions& options) {
    if (tokens.peek().kind == TokenKind::left_paren) {
        if (!skip_parenthesized(tokens)) {
            return Classification::primary(Reason::unparsable);
        }
    } else {
        while (tokens.take_keyword("analyze") || tokens.take_keyword("analyse") ||
               tokens.take_keyword("verbose")) {}
    }
    return classify_statement(tokens, options, true);
}

Classification classify_statement(TokenStream& tokens, const ClassifyOptions& options,
                                  bool explained) {
    const Token& first = tokens.peek();
    if (first.kind == TokenKind::left_paren) {
        return classify_query(tokens, options, false);
    }
    const Identifier word(first);
    if (first.kind != TokenKind::word || !word.known()) {
        return Classification::primary(Reason::unparsable);
    }
    const std::string_view keyword = word.view();
    if (keyword == "select" || keyword == "with" || keyword == "values" || keyword == "table") {
        return classify_query(tokens, options, false);
    }
    tokens.take();
    if (explained) {
        // Only a query can be explained and run on a replica; anything else keeps its reason
        // and goes to the primary. EXPLAIN EXPLAIN is no statement.
        if (keyword == "explain") {
            return Classification::primary(Reason::unparsable);
        }
        return Classification::primary(reason_by_first_word(keyword));
    }
    if (keyword == "show") {
        return classify_show(tokens);
    }
    if (keyword == "explain") {
        return classify_explain(tokens, options);
    }
    if (keyword == "copy") {
        return classify_copy(tokens, options);
    }
    if (keyword == "begin") {
        if (!tokens.take_keyword("work")) {
            tokens.take_keyword("transaction");
        }
        return classify_begin(tokens, options);
    }
    if (keyword == "start") {
        return tokens.take_keyword("transaction") ? classify_begin(tokens, options)
                                                  : Classification::primary(Reason::unparsable);
    }
    if (keyword == "set") {
        return classify_set(tokens);
    }
    if (keyword == "reset") {
        return classify_reset(tokens);
    }
    if (keyword == "discard") {
        const bool all = tokens.take_keyword("all"); // DISCARD ALL includes RESET ALL
        return Classification::primary(Reason::session_statement,
                                       all ? DefaultReadOnly::reset : DefaultReadOnly::unchanged);
    }
    if (keyword == "prepare") {
        const bool two_phase = tokens.take_keyword("transaction");
        return Classification::primary(two_phase ? Reason::transaction_control
                                                 : Reason::session_statement);
    }
    return Classification::primary(reason_by_first_word(keyword));
}

// What a first pass over the whole text finds before any statement is read. Whether the text
// can be read at all is settled here, for the whole text, so that the answer to it never
// depends on how far a later pass got before it stopped.
struct Shape {
    bool readable = true; // every token lexes and parentheses and brackets balance
    bool several_statements = false;
    bool empty = true;
    Hints hints;
};

Shape shape_of(std::string_view sql, bool standard_conforming_strings) {
    Shape shape;
    Lexer lexer(sql, standard_conforming_strings);
    bool in_statement = false;
    std::size_t parens = 0;
    std::size_t brackets = 0;
    const auto close = [&shape](std::size_t& depth) {
        shape.readable = shape.readable && depth > 0;
        depth -= depth > 0 ? 1 : 0;
    };
    for (;;) {
        const Token token = lexer.next();
        switch (token.kind) {
        case TokenKind::invalid:
            shape.readable = false;
            return shape;
        case TokenKind::end:
            shape.readable = shape.readable && parens == 0 && brackets == 0;
            shape.hints = lexer.hints();
            return shape;
        case TokenKind::semicolon:
            in_statement = false;
            continue;
        case TokenKind::left_paren:
            ++parens;
            break;
        case TokenKind::left_bracket:
            ++brackets;
            break;
        case TokenKind::right_paren:
            close(parens);
            break;
        case TokenKind::right_bracket:
            close(brackets);
            break;
        default:
            break;
        }
        if (!in_statement) {
            in_statement = true;
            shape.several_statements = !shape.empty;
            shape.empty = false;
            if (shape.several_statements) {
                return shape;
            }
        }
    }
}

} // namespace

Classification classify(std::string_view sql, const ClassifyOptions& options) noexcept {
    const Shape shape = shape_of(sql, options.standard_conforming_strings);
    if (shape.several_statements) {
        return Classification::primary(Reason::multi_statement);
    }
    if (!shape.readable) {
        return Classification::primary(Reason::unparsable);
    }
    Classification result = Classification::replica_ok(Reason::empty);
    if (!shape.empty) {
        TokenStream tokens(sql, options.standard_conforming_strings);
        result = classify_statement(tokens, options, false);
    }
    // A hint is the client's word about where to run, so it outranks everything the classifier
    // would say about a single readable statement; it only keeps what the statement does to
    // default_transaction_read_only.
    if (shape.hints.primary || shape.hints.replica) {
        result.target = shape.hints.primary ? Target::primary : Target::replica_ok;
        result.reason = Reason::hint;
    }
    return result;
}

std::string_view to_string(Target target) noexcept {
    switch (target) {
    case Target::primary:
        return "primary";
    case Target::replica_ok:
        return "replica_ok";
    }
    return "unknown";
}

std::string_view to_string(Reason reason) noexcept {
    switch (reason) {
    case Reason::read_only_select:
        return "read_only_select";
    case Reason::show:
        return "show";
    case Reason::copy_to_stdout:
        return "copy_to_stdout";
    case Reason::explicit_read_only:
        return "explicit_read_only";
    case Reason::default_read_only:
        return "default_read_only";
    case Reason::empty:
        return "empty";
    case Reason::hint:
        return "hint";
    case Reason::transaction_begin:
        return "transaction_begin";
    case Reason::serializable:
        return "serializable";
    case Reason::transaction_control:
        return "transaction_control";
    case Reason::set_default_read_only:
        return "set_default_read_only";
    case Reason::session_statement:
        return "session_statement";
    case Reason::write_statement:
        return "write_statement";
    case Reason::utility_statement:
        return "utility_statement";
    case Reason::role_probe:
        return "role_probe";
    case Reason::locking_clause:
        return "locking_clause";
    case Reason::select_into:
        return "select_into";
    case Reason::modifying_cte:
        return "modifying_cte";
    case Reason::function_not_allowed:
        return "function_not_allowed";
    case Reason::function_forbidden:
        return "function_forbidden";
    case Reason::multi_statement:
        return "multi_statement";
    case Reason::unparsable:
        return "unparsable";
    case Reason::unknown_statement:
        return "unknown_statement";
    }
    return "unknown";
}

} // namespace routing

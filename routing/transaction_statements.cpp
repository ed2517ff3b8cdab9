#include "routing/transaction_statements.hpp"

#include "routing/sql_lexer.hpp"

#include <optional>

namespace routing {

namespace {

// The access mode and isolation level in BEGIN, START TRANSACTION, SET TRANSACTION and SET
// SESSION CHARACTERISTICS AS TRANSACTION (gram.y transaction_mode_list: items separated by
// commas or by nothing).
struct TransactionModes {
    bool read_only = false;
    bool read_write = false; // both: the server applies the last, we take the safe one
    bool serializable = false;
};

bool parse_transaction_mode(TokenStream& tokens, TransactionModes& modes) {
    if (tokens.take_keyword("isolation")) {
        if (!tokens.take_keyword("level")) {
            return false;
        }
        if (tokens.take_keyword("serializable")) {
            modes.serializable = true;
            return true;
        }
        if (tokens.take_keyword("repeatable")) {
            return tokens.take_keyword("read");
        }
        return tokens.take_keyword("read") &&
               (tokens.take_keyword("committed") || tokens.take_keyword("uncommitted"));
    }
    if (tokens.take_keyword("read")) {
        modes.read_only = modes.read_only || tokens.peek().is_keyword("only");
        modes.read_write = modes.read_write || tokens.peek().is_keyword("write");
        return tokens.take_keyword("only") || tokens.take_keyword("write");
    }
    tokens.take_keyword("not");
    return tokens.take_keyword("deferrable");
}

std::optional<TransactionModes> parse_transaction_modes(TokenStream& tokens) {
    TransactionModes modes;
    while (tokens.peek().kind != TokenKind::end) {
        if (!parse_transaction_mode(tokens, modes)) {
            return std::nullopt;
        }
        if (tokens.peek().kind == TokenKind::comma) {
            tokens.take(); // and a mode must follow
            if (tokens.peek().kind == TokenKind::end) {
                return std::nullopt;
            }
        }
    }
    return modes;
}

} // namespace

// BEGIN [WORK | TRANSACTION] modes, START TRANSACTION modes. The first message of a
// transaction block is all the session sees before it must pick a server, so a block that does
// not declare itself read-only starts on the primary, even if every later statement reads.
Classification classify_begin(TokenStream& tokens, const ClassifyOptions& options) noexcept {
    const auto modes = parse_transaction_modes(tokens);
    if (!modes) {
        return Classification::primary(Reason::unparsable);
    }
    const bool read_only = !modes->read_write && modes->read_only;
    const bool by_default =
        !modes->read_write && !modes->read_only && options.default_transaction_read_only;
    if (read_only || by_default) {
        if (modes->serializable) {
            return Classification::primary(Reason::serializable);
        }
        return Classification::replica_ok(read_only ? Reason::explicit_read_only
                                                    : Reason::default_read_only);
    }
    return Classification::primary(Reason::transaction_begin);
}

namespace {

// A boolean setting as PostgreSQL's parse_bool reads it: true, yes, on, 1 and false, no, off,
// 0, any case, or any unique prefix of them ("of" is off, "o" is nothing). Anything else is
// refused by the server and changes nothing.
DefaultReadOnly read_only_setting(std::string_view value) {
    const auto prefix_of = [&](std::string_view word, std::size_t min_length) {
        return value.size() >= min_length && value.size() <= word.size() &&
               equals_ignoring_case(value, word.substr(0, value.size()));
    };
    if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || value == "1") {
        return DefaultReadOnly::on;
    }
    if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || value == "0") {
        return DefaultReadOnly::off;
    }
    return DefaultReadOnly::unchanged;
}

// The value after SET default_transaction_read_only = / TO, then the end of the statement.
DefaultReadOnly parse_read_only_value(TokenStream& tokens) {
    const Token value = tokens.take();
    if (tokens.peek().kind != TokenKind::end) {
        return DefaultReadOnly::unchanged;
    }
    if (value.is_keyword("default")) {
        return DefaultReadOnly::reset;
    }
    if (value.kind == TokenKind::word || value.kind == TokenKind::number) {
        return read_only_setting(value.text);
    }
    if (value.kind == TokenKind::quoted_identifier) {
        const Identifier name(value);
        return name.known() ? read_only_setting(name.view()) : DefaultReadOnly::unchanged;
    }
    if (value.kind == TokenKind::string && value.text.front() == '\'') {
        // A doubled quote inside would make it no boolean: no unescaping needed.
        return read_only_setting(value.text.substr(1, value.text.size() - 2));
    }
    return DefaultReadOnly::unchanged;
}

} // namespace

// Every SET goes to the primary: in transaction pooling a setting lives in the client's
// tracked parameters, replayed on whichever server it gets next, so where SET itself runs does
// not matter and the primary is never wrong. What the session needs from the text is whether
// default_transaction_read_only changes. SET TRANSACTION outside a transaction block only
// warns, so its READ ONLY form is harmless anywhere and is answered as BEGIN READ ONLY would be.
Classification classify_set(TokenStream& tokens) noexcept {
    if (tokens.take_keyword("transaction")) {
        if (tokens.peek().is_keyword("snapshot")) {
            return Classification::primary(Reason::session_statement);
        }
        const auto modes = parse_transaction_modes(tokens);
        if (!modes) {
            return Classification::primary(Reason::unparsable);
        }
        if (!modes->read_only || modes->read_write) {
            return Classification::primary(Reason::session_statement);
        }
        return modes->serializable ? Classification::primary(Reason::serializable)
                                   : Classification::replica_ok(Reason::explicit_read_only);
    }
    if (tokens.take_keyword("local")) {
        return Classification::primary(
            Reason::session_statement); // lasts until the end of a transaction
    }
    if (tokens.take_keyword("session") && tokens.take_keyword("characteristics")) {
        if (!tokens.take_keyword("as") || !tokens.take_keyword("transaction")) {
            return Classification::primary(Reason::unparsable);
        }
        const auto modes = parse_transaction_modes(tokens);
        if (!modes) {
            return Classification::primary(Reason::unparsable);
        }
        if (modes->read_write) {
            return Classification::primary(Reason::set_default_read_only, DefaultReadOnly::off);
        }
        if (modes->read_only) {
            return Classification::primary(Reason::set_default_read_only, DefaultReadOnly::on);
        }
        return Classification::primary(Reason::session_statement);
    }
    const Token name = tokens.take();
    const Token& assign = tokens.peek();
    if (!is_setting(name, "default_transaction_read_only") ||
        !((assign.kind == TokenKind::op && assign.text == "=") || assign.is_keyword("to"))) {
        return Classification::primary(Reason::session_statement);
    }
    tokens.take();
    const DefaultReadOnly change = parse_read_only_value(tokens);
    if (change == DefaultReadOnly::unchanged) {
        return Classification::primary(Reason::session_statement);
    }
    return Classification::primary(Reason::set_default_read_only, change);
}

Classification classify_reset(TokenStream& tokens) noexcept {
    if (tokens.take_keyword("all")) {
        return Classification::primary(Reason::session_statement, DefaultReadOnly::reset);
    }
    if (is_setting(tokens.take(), "default_transaction_read_only")) {
        return Classification::primary(Reason::set_default_read_only, DefaultReadOnly::reset);
    }
    return Classification::primary(Reason::session_statement);
}

} // namespace routing

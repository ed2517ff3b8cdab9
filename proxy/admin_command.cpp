#include "proxy/admin_command.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <vector>

namespace proxy {
namespace {

constexpr std::string_view syntax_error = "42601";

// Blanks as PostgreSQL's scanner counts them (scan.l "space").
bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Characters that end a bare word because they are tokens, or start one, of their own.
bool is_delimiter(char c) {
    return is_blank(c) || c == ';' || c == '=' || c == '"' || c == '\'';
}

bool is_keyword_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// ASCII only, as PostgreSQL folds identifiers in a multibyte encoding; other bytes are kept.
std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

// `text` for an error message: quoted, and cut short (never inside a UTF-8 sequence) so that a
// megabyte of garbage does not come back as a megabyte of error.
std::string quoted(std::string_view text) {
    constexpr std::size_t max_echo = 60;
    if (text.size() <= max_echo) return "'" + std::string(text) + "'";
    std::size_t cut = max_echo;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
        --cut;
    return "'" + std::string(text.substr(0, cut)) + "...'";
}

AdminError error(std::string message) {
    return AdminError{std::string(syntax_error), std::move(message)};
}

struct Token {
    enum class Kind {
        word,      // a bare word: keyword, number, unquoted name or value
        quoted,    // a "double-quoted" identifier; text is unescaped
        string,    // a 'single-quoted' string; text is unescaped
        equals,    // =
        semicolon, // ;
    };
    Kind kind = Kind::word;
    std::string text;
    std::string_view source; // as written, for error messages

    [[nodiscard]] bool is_keyword() const {
        return kind == Kind::word && std::ranges::all_of(text, is_keyword_char);
    }
    [[nodiscard]] bool is(std::string_view keyword) const {
        return is_keyword() && to_upper(text) == keyword;
    }
};

// Reads a quoted token starting at sql[at] (the opening quote): a doubled quote stands for
// one. The position after the closing quote, or std::nullopt if there is none.
std::optional<std::size_t> read_quoted(std::string_view sql, std::size_t at, std::string& text) {
    const char quote = sql[at];
    for (std::size_t i = at + 1; i < sql.size(); ++i) {
        if (sql[i] != quote) {
            text += sql[i];
        } else if (i + 1 < sql.size() && sql[i + 1] == quote) {
            text += quote;
            ++i;
        } else {
            return i + 1;
        }
    }
    return std::nullopt;
}

std::optional<AdminError> lex(std::string_view sql, std::vector<Token>& tokens) {
    std::size_t i = 0;
    while (i < sql.size()) {
        const char c = sql[i];
        if (is_blank(c)) {
            ++i;
            continue;
        }
        Token token;
        std::size_t end = i + 1;
        if (c == ';' || c == '=') {
            token.kind = c == ';' ? Token::Kind::semicolon : Token::Kind::equals;
        } else if (c == '"' || c == '\'') {
            token.kind = c == '"' ? Token::Kind::quoted : Token::Kind::string;
            const auto after = read_quoted(sql, i, token.text);
            if (!after) {
                return error(c == '"' ? "syntax error: unterminated quoted identifier"
                                      : "syntax error: unterminated quoted string");
            }
            // PostgreSQL's scanner refuses "" as a name too.
            if (c == '"' && token.text.empty()) return error("zero-length delimited identifier");
            end = *after;
        } else {
            while (end < sql.size() && !is_delimiter(sql[end]))
                ++end;
            token.text = std::string(sql.substr(i, end - i));
        }
        token.source = sql.substr(i, end - i);
        tokens.push_back(std::move(token));
        i = end;
    }
    return std::nullopt;
}

struct VerbName {
    std::string_view name;
    AdminVerb verb;
};

constexpr std::array<VerbName, 14> verb_names{{
    {"SHOW", AdminVerb::show},
    {"SELECT", AdminVerb::show},
    {"PAUSE", AdminVerb::pause},
    {"RESUME", AdminVerb::resume},
    {"DISABLE", AdminVerb::disable},
    {"ENABLE", AdminVerb::enable},
    {"RECONNECT", AdminVerb::reconnect},
    {"KILL", AdminVerb::kill},
    {"KILL_CLIENT", AdminVerb::kill_client},
    {"SUSPEND", AdminVerb::suspend},
    {"SHUTDOWN", AdminVerb::shutdown},
    {"RELOAD", AdminVerb::reload},
    {"WAIT_CLOSE", AdminVerb::wait_close},
    {"SET", AdminVerb::set},
}};

// Walks the tokens after the verb. Every method either fills the command or returns the
// AdminError that says what was expected instead.
class CommandParser {
public:
    CommandParser(std::span<const Token> tokens, std::string verb)
        : tokens_(tokens), verb_(std::move(verb)) {}

    std::optional<AdminError> parse(AdminCommand& command) {
        switch (command.verb) {
        case AdminVerb::show:
            return subject(command.argument);
        case AdminVerb::disable:
        case AdminVerb::enable:
            if (!has_argument()) return error(verb_ + " needs a database name");
            return database(command.argument);
        case AdminVerb::pause:
        case AdminVerb::resume:
        case AdminVerb::reconnect:
        case AdminVerb::kill:
        case AdminVerb::wait_close:
            return has_argument() ? database(command.argument) : std::nullopt;
        case AdminVerb::kill_client:
            return client_id(command.argument);
        case AdminVerb::shutdown:
            return has_argument() ? shutdown_mode(command.argument) : std::nullopt;
        case AdminVerb::set:
            return setting(command);
        case AdminVerb::suspend:
        case AdminVerb::reload:
            return std::nullopt;
        }
        return std::nullopt;
    }

    // What is left may only be one ';'.
    std::optional<AdminError> finish() const {
        if (at_ == tokens_.size()) return std::nullopt;
        const Token& next = tokens_[at_];
        if (next.kind != Token::Kind::semicolon) {
            return error("syntax error: unexpected " + quoted(next.source) + " after " + verb_);
        }
        if (at_ + 1 == tokens_.size()) return std::nullopt;
        return error("syntax error: one command per query, found " +
                     quoted(tokens_[at_ + 1].source) + " after ';'");
    }

private:
    // Another word of this command follows; a ';' ends the command (finish() checks the rest).
    bool has_argument() const {
        return at_ < tokens_.size() && tokens_[at_].kind != Token::Kind::semicolon;
    }

    std::optional<AdminError> subject(std::string& out) {
        if (!has_argument()) return error(verb_ + " needs a subject, e.g. " + verb_ + " POOLS");
        const Token& token = tokens_[at_++];
        if (!token.is_keyword()) {
            return error("syntax error: " + verb_ + " expects a word such as POOLS, not " +
                         quoted(token.source));
        }
        out = to_upper(token.text);
        return std::nullopt;
    }

    // SQL identifier rules: a bare name is folded to lower case, a "quoted" one is kept.
    std::optional<AdminError> database(std::string& out) {
        const Token& token = tokens_[at_++];
        if (token.kind == Token::Kind::word) {
            out = to_lower(token.text);
        } else if (token.kind == Token::Kind::quoted) {
            out = token.text;
        } else {
            return error("syntax error: " + verb_ + " expects a database name, not " +
                         quoted(token.source));
        }
        return std::nullopt;
    }

    // The id column of SHOW CLIENTS.
    std::optional<AdminError> client_id(std::string& out) {
        if (!has_argument())
            return error(verb_ + " needs a client id (the id column of SHOW CLIENTS)");
        const Token& token = tokens_[at_++];
        const bool digits =
            token.kind == Token::Kind::word &&
            std::ranges::all_of(token.text, [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) {
            return error("syntax error: " + verb_ + " expects a numeric client id, not " +
                         quoted(token.source));
        }
        out = token.text;
        return std::nullopt;
    }

    std::optional<AdminError> shutdown_mode(std::string& out) {
        const Token& token = tokens_[at_++];
        if (!token.is("WAIT_FOR_SERVERS") && !token.is("WAIT_FOR_CLIENTS")) {
            return error("syntax error: " + verb_ +
                         " accepts WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS, not " +
                         quoted(token.source));
        }
        out = to_upper(token.text);
        return std::nullopt;
    }

    // key = value, or key TO value; the value a 'string' or a bare word (10, 1.5, md5).
    std::optional<AdminError> setting(AdminCommand& command) {
        if (!has_argument()) return error(verb_ + " needs a setting: SET key = value");
        const Token& key = tokens_[at_++];
        if (!key.is_keyword()) {
            return error("syntax error: " + verb_ + " expects a setting name, not " +
                         quoted(key.source));
        }
        command.argument = to_lower(key.text);
        if (!has_argument()) return error(verb_ + " needs '=' or TO after " + quoted(key.source));
        const Token& assign = tokens_[at_++];
        if (assign.kind != Token::Kind::equals && !assign.is("TO")) {
            return error("syntax error: " + verb_ + " expects '=' or TO after " +
                         quoted(key.source) + ", not " + quoted(assign.source));
        }
        if (!has_argument()) return error(verb_ + " needs a value for " + quoted(key.source));
        const Token& value = tokens_[at_++];
        if (value.kind != Token::Kind::word && value.kind != Token::Kind::string) {
            return error("syntax error: " + verb_ +
                         " expects a 'quoted string' or a bare word as the value, not " +
                         quoted(value.source));
        }
        command.value = value.text;
        return std::nullopt;
    }

    std::span<const Token> tokens_;
    std::size_t at_ = 0;
    std::string verb_; // in upper case, for messages
};

} // namespace

std::variant<AdminCommand, EmptyAdminQuery, AdminError> parse_admin_command(std::string_view sql) {
    std::vector<Token> tokens;
    if (auto failed = lex(sql, tokens)) return *failed;
    if (std::ranges::all_of(tokens,
                            [](const Token& t) { return t.kind == Token::Kind::semicolon; }))
        return EmptyAdminQuery{};

    const Token& first = tokens.front();
    if (first.kind == Token::Kind::semicolon) {
        return error("syntax error: one command per query, found " + quoted(tokens[1].source) +
                     " after ';'");
    }
    const std::string verb = first.is_keyword() ? to_upper(first.text) : std::string();
    const auto known = std::ranges::find(verb_names, verb, &VerbName::name);
    if (verb.empty() || known == verb_names.end()) {
        return error("syntax error: unknown command " + quoted(first.source));
    }

    AdminCommand command;
    command.verb = known->verb;
    CommandParser parser{std::span<const Token>(tokens).subspan(1), verb};
    if (auto failed = parser.parse(command)) return *failed;
    if (auto failed = parser.finish()) return *failed;
    return command;
}

} // namespace proxy

#include "routing/sql_lexer.hpp"

#include <algorithm>

namespace routing {

namespace {

// Character classes of scan.l. Bytes from 0x80 up belong to identifiers whatever the encoding.
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_ident_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) {
    return is_ident_start(c) || is_digit(c) || c == '$';
}
bool is_operator_char(char c) {
    return std::string_view("~!@#^&|`?+-*/%<>=").find(c) != std::string_view::npos;
}
char to_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

} // namespace

bool equals_ignoring_case(std::string_view text, std::string_view lower) noexcept {
    return text.size() == lower.size() &&
           std::equal(text.begin(), text.end(), lower.begin(),
                      [](char a, char b) { return to_lower(a) == b; });
}

bool Token::is_keyword(std::string_view keyword) const noexcept {
    return kind == TokenKind::word && equals_ignoring_case(text, keyword);
}

// The query string of a Query or Parse message ends at its NUL, so a NUL inside the text means
// the caller passed bytes the server would never see: refuse the whole text.
Lexer::Lexer(std::string_view sql, bool standard_conforming_strings) noexcept
    : sql_(sql), standard_conforming_strings_(standard_conforming_strings),
      failed_(sql.find('\0') != std::string_view::npos) {}

Token Lexer::fail() noexcept {
    failed_ = true;
    return {TokenKind::invalid, sql_.substr(std::min(pos_, sql_.size()))};
}

Token Lexer::next() noexcept {
    if (failed_ || !skip_spaces_and_comments()) {
        return fail();
    }
    if (pos_ == sql_.size()) {
        return {TokenKind::end, {}};
    }
    const std::size_t begin = pos_;
    const char c = sql_[pos_];
    const auto single = [&](TokenKind kind) {
        ++pos_;
        return make(kind, begin);
    };
    switch (c) {
    case '(':
        return single(TokenKind::left_paren);
    case ')':
        return single(TokenKind::right_paren);
    case '[':
        return single(TokenKind::left_bracket);
    case ']':
        return single(TokenKind::right_bracket);
    case ',':
        return single(TokenKind::comma);
    case ';':
        return single(TokenKind::semicolon);
    case '.':
        return is_digit(at(pos_ + 1)) ? number(begin) : single(TokenKind::dot);
    case ':':
        pos_ += at(pos_ + 1) == ':' ? 2 : 1;
        return make(TokenKind::op, begin);
    case '\'':
        return quoted(begin, begin, TokenKind::string, !standard_conforming_strings_);
    case '"':
        return quoted(begin, begin, TokenKind::quoted_identifier, false);
    case '$':
        return dollar_quoted_or_parameter(begin);
    default:
        break;
    }
    if (is_digit(c)) {
        return number(begin);
    }
    if (is_ident_start(c)) {
        return word_or_prefixed_literal(begin);
    }
    if (is_operator_char(c)) {
        return operator_run(begin);
    }
    return fail();
}

bool Lexer::skip_spaces_and_comments() noexcept {
    while (pos_ < sql_.size()) {
        const char c = sql_[pos_];
        if (is_space(c)) {
            ++pos_;
        } else if (c == '-' && at(pos_ + 1) == '-') {
            const std::size_t eol = sql_.find_first_of("\r\n", pos_);
            pos_ = eol == std::string_view::npos ? sql_.size() : eol;
        } else if (c == '/' && at(pos_ + 1) == '*') {
            if (!skip_block_comment()) {
                return false;
            }
        } else {
            return true;
        }
    }
    return true;
}

// Block comments nest (unlike the SQL standard's), so "/* /* */ SELECT" is still a comment.
bool Lexer::skip_block_comment() noexcept {
    const std::size_t body = pos_ + 2;
    std::size_t depth = 1;
    pos_ = body;
    while (pos_ + 1 < sql_.size()) {
        if (sql_[pos_] == '/' && sql_[pos_ + 1] == '*') {
            ++depth;
            pos_ += 2;
        } else if (sql_[pos_] == '*' && sql_[pos_ + 1] == '/') {
            pos_ += 2;
            if (--depth == 0) {
                const std::string_view text = trim(sql_.substr(body, pos_ - 2 - body));
                hints_.replica = hints_.replica || equals_ignoring_case(text, "pgmarina:replica");
                hints_.primary = hints_.primary || equals_ignoring_case(text, "pgmarina:primary");
                return true;
            }
        } else {
            ++pos_;
        }
    }
    return false;
}

// From the opening quote at `open`: a doubled quote stands for one, and where backslash escapes
// apply (E'' strings, or '' strings with standard_conforming_strings off) a backslash takes the
// next byte with it.
Token Lexer::quoted(std::size_t begin, std::size_t open, TokenKind kind,
                    bool backslash_escapes) noexcept {
    const char quote = sql_[open];
    pos_ = open + 1;
    while (pos_ < sql_.size()) {
        const char c = sql_[pos_];
        if (c == '\\' && backslash_escapes) {
            pos_ += 2;
        } else if (c == quote && at(pos_ + 1) == quote) {
            pos_ += 2;
        } else if (c == quote) {
            ++pos_;
            return make(kind, begin);
        } else {
            ++pos_;
        }
    }
    return fail();
}

// `$1` is a parameter; `$$` or `$tag$` opens a string that only the same delimiter closes. A `$`
// starting anything else is not a token (scan.l returns it alone, which the grammar rejects).
Token Lexer::dollar_quoted_or_parameter(std::size_t begin) noexcept {
    std::size_t i = begin + 1;
    if (is_digit(at(i))) {
        while (is_digit(at(i))) {
            ++i;
        }
        pos_ = i;
        return make(TokenKind::parameter, begin);
    }
    if (is_ident_start(at(i))) {
        while (is_ident_char(at(i)) && at(i) != '$') {
            ++i;
        }
    }
    if (at(i) != '$') {
        return fail();
    }
    const std::string_view delimiter = sql_.substr(begin, i + 1 - begin);
    const std::size_t close = sql_.find(delimiter, i + 1);
    if (close == std::string_view::npos) {
        return fail();
    }
    pos_ = close + delimiter.size();
    return make(TokenKind::string, begin);
}

// Digits with underscores, an optional fraction and exponent, or a 0x/0o/0b integer. Letters
// right after a number start a new token here; the server (16 and later) calls them trailing
// junk, which is a syntax error either way.
Token Lexer::number(std::size_t begin) noexcept {
    const auto digits = [&](auto is_valid) {
        while (is_valid(at(pos_)) || (at(pos_) == '_' && is_valid(at(pos_ + 1)))) {
            ++pos_;
        }
    };
    pos_ = begin;
    const char base = to_lower(at(pos_ + 1));
    if (at(pos_) == '0' && (base == 'x' || base == 'o' || base == 'b')) {
        const auto is_base_digit = [base](char c) {
            if (base == 'x') {
                return is_digit(c) || (to_lower(c) >= 'a' && to_lower(c) <= 'f');
            }
            return c >= '0' && c <= (base == 'o' ? '7' : '1');
        };
        if (is_base_digit(at(pos_ + 2)) || (at(pos_ + 2) == '_' && is_base_digit(at(pos_ + 3)))) {
            pos_ += 2;
            digits(is_base_digit);
            return make(TokenKind::number, begin);
        }
    }
    digits(is_digit);
    if (at(pos_) == '.' && at(pos_ + 1) != '.') {
        ++pos_;
        digits(is_digit);
    }
    if (to_lower(at(pos_)) == 'e') {
        const std::size_t sign = at(pos_ + 1) == '+' || at(pos_ + 1) == '-' ? 1 : 0;
        if (is_digit(at(pos_ + 1 + sign))) {
            pos_ += 1 + sign;
            digits(is_digit);
        }
    }
    return make(TokenKind::number, begin);
}

// A one-letter word glued to a quote is a string prefix: E'' (backslash escapes), B'' and X''
// (bit strings), N'' (national character, lexed as ''); U& glued to a quote is a Unicode-escape
// string or identifier.
Token Lexer::word_or_prefixed_literal(std::size_t begin) noexcept {
    const char first = to_lower(sql_[begin]);
    if (at(begin + 1) == '\'' && std::string_view("ebxn").find(first) != std::string_view::npos) {
        const bool backslashes = first == 'e' || (first == 'n' && !standard_conforming_strings_);
        return quoted(begin, begin + 1, TokenKind::string, backslashes);
    }
    if (first == 'u' && at(begin + 1) == '&' && (at(begin + 2) == '\'' || at(begin + 2) == '"')) {
        const TokenKind kind =
            at(begin + 2) == '\'' ? TokenKind::string : TokenKind::quoted_identifier;
        return quoted(begin, begin + 2, kind, false);
    }
    pos_ = begin;
    while (is_ident_char(at(pos_))) {
        ++pos_;
    }
    return make(TokenKind::word, begin);
}

// An operator ends where a comment starts, as in scan.l: "1 +--x" is 1 + and a comment.
Token Lexer::operator_run(std::size_t begin) noexcept {
    pos_ = begin;
    while (is_operator_char(at(pos_))) {
        const char c = at(pos_);
        const char d = at(pos_ + 1);
        if ((c == '-' && d == '-') || (c == '/' && d == '*')) {
            break;
        }
        ++pos_;
    }
    return make(TokenKind::op, begin);
}

Identifier::Identifier(const Token& token) noexcept {
    std::string_view text = token.text;
    const auto append = [this](char c) {
        if (size_ == chars_.size()) {
            return false;
        }
        chars_[size_++] = c;
        return true;
    };
    if (token.kind == TokenKind::word) {
        known_ = std::all_of(text.begin(), text.end(), [&](char c) { return append(to_lower(c)); });
        return;
    }
    if (token.kind != TokenKind::quoted_identifier || text.front() != '"') {
        return;
    }
    text = text.substr(1, text.size() - 2);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (!append(text[i])) {
            return;
        }
        if (text[i] == '"') {
            ++i; // the second quote of a doubled pair
        }
    }
    known_ = size_ > 0; // "" is refused by the server
}

bool is_setting(const Token& token, std::string_view name) noexcept {
    const Identifier identifier(token);
    return identifier.known() && equals_ignoring_case(identifier.view(), name);
}

} // namespace routing

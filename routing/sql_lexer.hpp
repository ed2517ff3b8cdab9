#pragma once

// A lexer for PostgreSQL SQL text, just precise enough to route transactions: it finds where
// strings, quoted identifiers and comments begin and end exactly as the server's scanner
// (src/backend/parser/scan.l) does, so that nothing hidden in them can look like a keyword and
// nothing outside them can hide. Tokens are views into the text; nothing is allocated.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace routing {

enum class TokenKind : std::uint8_t {
    word,              // an unquoted identifier or keyword; compared ignoring ASCII case
    quoted_identifier, // "..." or U&"..."; the text keeps the quotes and the prefix
    string,            // '...', E'...', B'...', X'...', N'...', U&'...', $$...$$, $tag$...$tag$
    number,            // 42, 1.5, .5e-3, 0x1F, 1_000
    parameter,         // $1
    op,                // a run of operator characters (+ - * / < > = ~ ! @ # % ^ & | ` ?), or :, ::
    left_paren,
    right_paren,
    left_bracket,
    right_bracket,
    comma,
    semicolon,
    dot,
    end,     // no more tokens; returned again on every later call
    invalid, // an unterminated string, identifier or comment, a NUL byte, or a byte no token
             // starts with; returned again on every later call
};

// ASCII case folding, as the server folds unquoted words.
[[nodiscard]] bool equals_ignoring_case(std::string_view text, std::string_view lower) noexcept;

struct Token {
    TokenKind kind = TokenKind::end;
    std::string_view text;

    // A word equal to `keyword`, which must be lower case.
    [[nodiscard]] bool is_keyword(std::string_view keyword) const noexcept;
    [[nodiscard]] bool is_name() const noexcept {
        return kind == TokenKind::word || kind == TokenKind::quoted_identifier;
    }
};

// Routing hints: a comment whose whole text is `pgmarina:replica` or `pgmarina:primary`
// (any case, spaces around it allowed), in /* */ form only, so that a hint is never the tail of
// a line comment someone wrote for people.
struct Hints {
    bool replica = false;
    bool primary = false;
};

// standard_conforming_strings decides whether a backslash escapes a quote inside '...': with it
// on (the default since PostgreSQL 9.1) the text 'a\' is a complete string, with it off the
// string goes on. The session knows the value from ParameterStatus and passes it here.
class Lexer {
public:
    explicit Lexer(std::string_view sql, bool standard_conforming_strings = true) noexcept;

    [[nodiscard]] Token next() noexcept;

    // Hints in the comments skipped so far.
    [[nodiscard]] const Hints& hints() const noexcept { return hints_; }

private:
    [[nodiscard]] bool skip_spaces_and_comments() noexcept;
    [[nodiscard]] bool skip_block_comment() noexcept;
    [[nodiscard]] Token quoted(std::size_t begin, std::size_t open, TokenKind kind,
                               bool backslash_escapes) noexcept;
    [[nodiscard]] Token dollar_quoted_or_parameter(std::size_t begin) noexcept;
    [[nodiscard]] Token number(std::size_t begin) noexcept;
    [[nodiscard]] Token word_or_prefixed_literal(std::size_t begin) noexcept;
    [[nodiscard]] Token operator_run(std::size_t begin) noexcept;
    [[nodiscard]] Token make(TokenKind kind, std::size_t begin) const noexcept {
        return {kind, sql_.substr(begin, pos_ - begin)};
    }
    [[nodiscard]] Token fail() noexcept;
    [[nodiscard]] char at(std::size_t i) const noexcept { return i < sql_.size() ? sql_[i] : '\0'; }

    std::string_view sql_;
    std::size_t pos_ = 0;
    bool standard_conforming_strings_;
    bool failed_ = false;
    Hints hints_;
};

// The name an identifier token stands for, as the server resolves it: an unquoted word folded
// to lower case (ASCII letters only, as the server does for multibyte encodings such as UTF-8),
// a quoted one with "" unescaped. Unknown for other tokens and when the text alone does not
// tell: a name longer than NAMEDATALEN - 1 (63) bytes, which the server truncates, or a U&"..."
// name with escapes. Callers treat an unknown name as one they cannot vouch for.
class Identifier {
public:
    explicit Identifier(const Token& token) noexcept;

    [[nodiscard]] bool known() const noexcept { return known_; }
    [[nodiscard]] std::string_view view() const noexcept { return {chars_.data(), size_}; }
    [[nodiscard]] bool operator==(std::string_view name) const noexcept {
        return known_ && view() == name;
    }

private:
    std::array<char, 63> chars_{};
    std::size_t size_ = 0;
    bool known_ = false;
};

// Whether a token names the setting `name` (lower case) in SET, SHOW or RESET: the server looks
// settings up without case, quoted or not (guc.c, guc_name_compare).
[[nodiscard]] bool is_setting(const Token& token, std::string_view name) noexcept;

} // namespace routing

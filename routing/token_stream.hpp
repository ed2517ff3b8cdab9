#pragma once

#include "routing/sql_lexer.hpp"

#include <string_view>

namespace routing {

// The tokens of the first statement in a text, with one token of lookahead: leading semicolons
// are skipped and the next semicolon reads as the end. Whether anything follows that semicolon
// is the caller's concern (classify checks it before reading a statement).
class TokenStream {
public:
    TokenStream(std::string_view sql, bool standard_conforming_strings) noexcept
        : lexer_(sql, standard_conforming_strings) {
        do {
            next_ = lexer_.next();
        } while (next_.kind == TokenKind::semicolon);
    }

    [[nodiscard]] const Token& peek() const noexcept { return next_; }

    // The next token; at the end, the end again.
    Token take() noexcept {
        const Token token = next_;
        if (token.kind != TokenKind::end && token.kind != TokenKind::invalid) {
            next_ = lexer_.next();
            if (next_.kind == TokenKind::semicolon) {
                next_ = {TokenKind::end, {}};
            }
        }
        return token;
    }

    // Takes the next token if it is `keyword` (lower case).
    bool take_keyword(std::string_view keyword) noexcept {
        if (!next_.is_keyword(keyword)) {
            return false;
        }
        take();
        return true;
    }

private:
    Lexer lexer_;
    Token next_;
};

} // namespace routing

#include "routing/sql_lexer.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

using routing::Hints;
using routing::Identifier;
using routing::is_setting;
using routing::Lexer;
using routing::Token;
using routing::TokenKind;
using namespace std::string_view_literals;

// Every token up to and including the end or the first invalid one.
std::vector<Token> lex(std::string_view sql, bool standard_conforming_strings = true) {
    Lexer lexer(sql, standard_conforming_strings);
    std::vector<Token> tokens;
    for (;;) {
        tokens.push_back(lexer.next());
        if (tokens.back().kind == TokenKind::end || tokens.back().kind == TokenKind::invalid) {
            return tokens;
        }
    }
}

std::vector<std::string_view> texts(std::string_view sql, bool standard_conforming_strings = true) {
    std::vector<std::string_view> out;
    for (const Token& token : lex(sql, standard_conforming_strings)) {
        if (token.kind != TokenKind::end) {
            out.push_back(token.kind == TokenKind::invalid ? "<invalid>"sv : token.text);
        }
    }
    return out;
}

std::vector<TokenKind> kinds(std::string_view sql) {
    std::vector<TokenKind> out;
    for (const Token& token : lex(sql)) {
        out.push_back(token.kind);
    }
    return out;
}

// The kind of a text that lexes as exactly one token.
TokenKind kind_of(std::string_view sql) {
    const auto tokens = lex(sql);
    REQUIRE(tokens.size() == 2);
    CHECK(tokens[0].text == sql);
    CHECK(tokens[1].kind == TokenKind::end);
    return tokens[0].kind;
}

Hints hints_of(std::string_view sql) {
    Lexer lexer(sql);
    while (lexer.next().kind == TokenKind::word) {}
    return lexer.hints();
}

std::string resolved(std::string_view sql) {
    const Identifier name(lex(sql).front());
    return name.known() ? std::string(name.view()) : "<unknown>";
}

} // namespace

TEST_SUITE("routing.sql_lexer") {
    TEST_CASE("nothing but spaces and comments is the end, and the end repeats") {
        for (const std::string_view sql :
             {""sv, "  \t\r\n\f\v"sv, "-- line"sv, "/* block */"sv, "/* a /* b */ c */ -- x"sv}) {
            CAPTURE(sql);
            Lexer lexer(sql);
            CHECK(lexer.next().kind == TokenKind::end);
            CHECK(lexer.next().kind == TokenKind::end);
        }
    }

    TEST_CASE("punctuation, words, numbers and operators") {
        CHECK(texts("SELECT a.b, (c)[1] FROM t;") ==
              std::vector{"SELECT"sv, "a"sv, "."sv, "b"sv, ","sv, "("sv, "c"sv, ")"sv, "["sv, "1"sv,
                          "]"sv, "FROM"sv, "t"sv, ";"sv});
        CHECK(kinds("a.b(1);") == std::vector{TokenKind::word, TokenKind::dot, TokenKind::word,
                                              TokenKind::left_paren, TokenKind::number,
                                              TokenKind::right_paren, TokenKind::semicolon,
                                              TokenKind::end});
        CHECK(kinds("[],") == std::vector{TokenKind::left_bracket, TokenKind::right_bracket,
                                          TokenKind::comma, TokenKind::end});
        CHECK(texts("x::int") == std::vector{"x"sv, "::"sv, "int"sv});
        CHECK(texts("a[1:2]") == std::vector{"a"sv, "["sv, "1"sv, ":"sv, "2"sv, "]"sv});
        CHECK(texts("a<>=b||c") == std::vector{"a"sv, "<>="sv, "b"sv, "||"sv, "c"sv});
        CHECK(kind_of("@>") == TokenKind::op);
        CHECK(kind_of("$1") == TokenKind::parameter);
        CHECK(texts("$12+$3") == std::vector{"$12"sv, "+"sv, "$3"sv});
    }

    TEST_CASE("words take letters, digits, underscores, dollars and any byte from 0x80") {
        CHECK(kind_of("_a1$b") == TokenKind::word);
        CHECK(kind_of("naïve") == TokenKind::word);
        CHECK(kind_of("日本語") == TokenKind::word);
        CHECK(texts("a$$b$$") == std::vector{"a$$b$$"sv}); // not a dollar quote
        CHECK(texts("1abc") == std::vector{"1"sv, "abc"sv});
    }

    TEST_CASE("keywords compare without ASCII case") {
        const Token token = lex("SeLeCt").front();
        CHECK(token.is_keyword("select"));
        CHECK_FALSE(token.is_keyword("selec"));
        CHECK_FALSE(lex("\"select\"").front().is_keyword("select"));
        CHECK_FALSE(lex("'select'").front().is_keyword("select"));
    }

    TEST_CASE("numbers") {
        for (const std::string_view number :
             {"0"sv, "42"sv, "1.5"sv, "1."sv, ".5"sv, "1e10"sv, "1E-10"sv, "2.5e+3"sv, "0x1F"sv,
              "0o17"sv, "0b101"sv, "1_000_000"sv, "0x_ff"sv}) {
            CAPTURE(number);
            CHECK(kind_of(number) == TokenKind::number);
        }
        CHECK(texts("1e") == std::vector{"1"sv, "e"sv});
        CHECK(texts("1e-x") == std::vector{"1"sv, "e"sv, "-"sv, "x"sv});
        CHECK(texts("0xg") == std::vector{"0"sv, "xg"sv});
        CHECK(texts("1..2") == std::vector{"1"sv, "."sv, ".2"sv});
        CHECK(texts("1_") == std::vector{"1"sv, "_"sv});
        CHECK(texts("1.5.5") == std::vector{"1.5"sv, ".5"sv});
    }

    TEST_CASE("strings") {
        for (const std::string_view string :
             {"''"sv, "'abc'"sv, "'it''s'"sv, "'a;b -- /*'"sv, "E'it\\'s'"sv, "e'\\\\'"sv,
              "E'a''b'"sv, "B'101'"sv, "x'1F'"sv, "N'abc'"sv, "U&'\\0041'"sv, "u&'x'"sv,
              "$$a;b$$"sv, "$$$$"sv, "$tag$ $$ ' \" $tag$"sv, "$a$$a$"sv, "$_x1$ $_x2$ $_x1$"sv,
              "'a\\'"sv}) {
            CAPTURE(string);
            CHECK(kind_of(string) == TokenKind::string);
        }
        CHECK(texts("'a' 'b'") == std::vector{"'a'"sv, "'b'"sv});
        CHECK(texts("; x'") == std::vector{";"sv, "<invalid>"sv}); // x' opens a bit string
        CHECK(texts("ab'c'") == std::vector{"ab"sv, "'c'"sv});     // a typed literal, not a prefix
        CHECK(texts("U& 'x'") == std::vector{"U"sv, "&"sv, "'x'"sv});
        CHECK(texts("$a$ $A$ $a$") == std::vector{"$a$ $A$ $a$"sv}); // tags are case-sensitive
    }

    TEST_CASE("standard_conforming_strings decides whether a backslash escapes in ''") {
        CHECK(texts(R"('a\'; y')") == std::vector{R"('a\')"sv, ";"sv, "y"sv, "<invalid>"sv});
        CHECK(texts(R"('a\'; y')", false) == std::vector{R"('a\'; y')"sv});
        CHECK(texts(R"(N'a\'; y')", false) == std::vector{R"(N'a\'; y')"sv});
        // E'' escapes and B'' does not, whatever the setting.
        CHECK(texts(R"(E'a\'; y')") == std::vector{R"(E'a\'; y')"sv});
        CHECK(texts(R"(B'1\'; y')", false) ==
              std::vector{R"(B'1\')"sv, ";"sv, "y"sv, "<invalid>"sv});
    }

    TEST_CASE("quoted identifiers") {
        CHECK(kind_of("\"a\"") == TokenKind::quoted_identifier);
        CHECK(kind_of("\"for update\"") == TokenKind::quoted_identifier);
        CHECK(kind_of("\"a\"\"b\"") == TokenKind::quoted_identifier);
        CHECK(kind_of("U&\"d\\0061t\"") == TokenKind::quoted_identifier);
        CHECK(texts("\"a\".\"b\"") == std::vector{"\"a\""sv, "."sv, "\"b\""sv});
    }

    TEST_CASE("comments are skipped, nested block comments included") {
        CHECK(texts("a -- b\nc") == std::vector{"a"sv, "c"sv});
        CHECK(texts("a -- b\rc") == std::vector{"a"sv, "c"sv});
        CHECK(texts("a /* b /* c */ d */ e") == std::vector{"a"sv, "e"sv});
        CHECK(texts("a/**/b") == std::vector{"a"sv, "b"sv});
        CHECK(texts("a /* ** / */ b") == std::vector{"a"sv, "b"sv});
        CHECK(texts("a /*/ b */ c") == std::vector{"a"sv, "c"sv});
        // An operator stops where a comment starts.
        CHECK(texts("1 +--x\n2") == std::vector{"1"sv, "+"sv, "2"sv});
        CHECK(texts("1 */* x */2") == std::vector{"1"sv, "*"sv, "2"sv});
        CHECK(texts("1 -/* x */- 2") == std::vector{"1"sv, "-"sv, "-"sv, "2"sv});
        CHECK(texts("'--' \"/*\"") == std::vector{"'--'"sv, "\"/*\""sv});
    }

    TEST_CASE("anything unterminated is invalid, and invalid repeats") {
        for (const std::string_view sql :
             {"'abc"sv, "'it''s"sv, "E'abc\\'"sv, "E'\\"sv, "\"abc"sv, "\"a\"\""sv, "U&\"x"sv,
              "U&'x"sv, "B'1"sv, "$$abc"sv, "$tag$ abc $tag"sv, "$a$ $b$"sv, "/* abc"sv,
              "/* a /* b */"sv, "/*"sv, "/*/"sv}) {
            CAPTURE(sql);
            Lexer lexer(sql);
            CHECK(lexer.next().kind == TokenKind::invalid);
            CHECK(lexer.next().kind == TokenKind::invalid);
        }
        CHECK(kinds("SELECT 'x") == std::vector{TokenKind::word, TokenKind::invalid});
    }

    TEST_CASE("bytes no token starts with are invalid, and so is NUL anywhere") {
        for (const std::string_view sql : {"\\d"sv, "{"sv, "}"sv, "$"sv, "$ x"sv, "$foo"sv,
                                           "\x01"sv, "SELECT 1\0"sv, "'\0'"sv, "-- \0"sv}) {
            CAPTURE(sql);
            const auto tokens = lex(sql);
            CHECK(tokens.back().kind == TokenKind::invalid);
        }
        CHECK(lex("SELECT\0 1"sv).front().kind == TokenKind::invalid);
    }

    TEST_CASE("hints are block comments that say exactly pgmarina:replica or pgmarina:primary") {
        CHECK(hints_of("/* pgmarina:replica */ SELECT").replica);
        CHECK(hints_of("SELECT /*pgmarina:replica*/").replica);
        CHECK(hints_of("/*\n\tPGMarina:Replica\n*/").replica);
        CHECK(hints_of("/* pgmarina:primary */").primary);
        const Hints both = hints_of("/* pgmarina:primary */ a /* pgmarina:replica */");
        CHECK(both.primary);
        CHECK(both.replica);

        for (const std::string_view sql :
             {"-- pgmarina:replica"sv, "/* pgmarina: replica */"sv, "/* pgmarina:replica. */"sv,
              "/* use pgmarina:replica */"sv, "/* pgmarina:replica /* x */ */"sv,
              "/* x /* pgmarina:replica */ */"sv, "'/* pgmarina:replica */'"sv,
              "\"/* pgmarina:replica */\""sv, "$$/* pgmarina:replica */$$"sv}) {
            CAPTURE(sql);
            const Hints hints = hints_of(sql);
            CHECK_FALSE(hints.replica);
            CHECK_FALSE(hints.primary);
        }
    }

    TEST_CASE("identifiers resolve as the server resolves them") {
        CHECK(resolved("NextVal") == "nextval");
        CHECK(resolved("\"NextVal\"") == "NextVal");
        CHECK(resolved("\"a\"\"b\"") == "a\"b");
        CHECK(resolved("ÄBC") == "Äbc"); // only ASCII letters fold
        CHECK(resolved(std::string(63, 'A')) == std::string(63, 'a'));
        CHECK(resolved(std::string(64, 'a')) == "<unknown>"); // the server would truncate it
        CHECK(resolved("\"" + std::string(63, 'a') + "\"") == std::string(63, 'a'));
        CHECK(resolved("\"" + std::string(64, 'a') + "\"") == "<unknown>");
        CHECK(resolved("\"\"") == "<unknown>"); // zero-length names are refused
        CHECK(resolved("U&\"abc\"") == "<unknown>");
        CHECK(resolved("'abc'") == "<unknown>");
        CHECK(resolved("42") == "<unknown>");
        CHECK(Identifier(lex("Lower").front()) == "lower");
        CHECK_FALSE(Identifier(lex("Lower").front()) == "Lower");
    }

    TEST_CASE("settings are named without case, quoted or not") {
        CHECK(is_setting(lex("TimeZone").front(), "timezone"));
        CHECK(is_setting(lex("\"TimeZone\"").front(), "timezone"));
        CHECK_FALSE(is_setting(lex("\"Time Zone\"").front(), "timezone"));
        CHECK_FALSE(is_setting(lex("'timezone'").front(), "timezone"));
    }
}

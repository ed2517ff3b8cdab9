#include "routing/query_scan.hpp"

#include "routing/function_lists.hpp"
#include "routing/word_list.hpp"

#include <cstdint>
#include <optional>
#include <utility>

namespace routing {

namespace {

// Words that, followed by '(', are grammar and not a function call: PostgreSQL's reserved and
// col_name keywords (kwlist.h of 17), which cannot name a function unless quoted, so that
// "in (", "exists (", "coalesce (", "numeric(10, 2)" or "values (" is never a call; and four
// more whose parenthesis is syntax in practice: BY (ORDER BY (x)), JOIN (a JOIN (b JOIN c)),
// LIKE and ILIKE (x LIKE (pattern)), OVERLAPS ((a, b) OVERLAPS (c, d)).
constexpr std::string_view not_a_call_text =
    // Reserved.
    "all analyse analyze and any array as asc asymmetric both case cast check collate column "
    "constraint create current_catalog current_date current_role current_time current_timestamp "
    "current_user default deferrable desc distinct do else end except false fetch for foreign "
    "from grant group having in initially intersect into lateral leading limit localtime "
    "localtimestamp not null offset on only or order placing primary references returning select "
    "session_user some symmetric system_user table then to trailing true union unique user using "
    "variadic when where window with "
    // Column names only.
    "between bigint bit boolean char character coalesce dec decimal exists extract float greatest "
    "grouping inout int integer interval json json_array json_arrayagg json_exists json_object "
    "json_objectagg json_query json_scalar json_serialize json_table json_value least "
    "merge_action national nchar none normalize nullif numeric out overlay position precision "
    "real row setof smallint substring time timestamp treat trim values varchar xmlattributes "
    "xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize "
    "xmltable "
    // In practice.
    "by ilike join like overlaps";
constexpr WordList<count_words(not_a_call_text)> not_a_call{not_a_call_text};

// WITH lists are followed this many parentheses deep. Deeper, a CTE's column list reads as a
// call, which only costs a trip to the primary.
constexpr std::size_t tracked_depth = 64;

class QueryScanner {
public:
    QueryScanner(TokenStream& tokens, const ClassifyOptions& options) noexcept
        : tokens_(tokens), options_(options) {}

    Classification run(bool inside_parens) noexcept;

private:
    Token take() noexcept {
        previous_ = current_;
        current_ = tokens_.take();
        return current_;
    }
    [[nodiscard]] std::optional<Classification> word(const Token& token, bool cte_name) noexcept;
    [[nodiscard]] std::optional<Classification> name(bool cte_name) noexcept;
    [[nodiscard]] static bool is_call(const Token& first, bool qualified,
                                      const Token& before) noexcept;
    [[nodiscard]] std::optional<Classification> call(const Token* schema,
                                                     const Token& function) noexcept;
    [[nodiscard]] Classification finish() const noexcept {
        return {Target::replica_ok,
                unlisted_call_ ? Reason::default_read_only : Reason::read_only_select};
    }
    [[nodiscard]] bool in_with_list() const noexcept {
        return depth_ < tracked_depth && (with_lists_ >> depth_ & 1) != 0;
    }
    void set_with_list(bool open) noexcept {
        if (depth_ < tracked_depth) {
            const std::uint64_t bit = std::uint64_t{1} << depth_;
            with_lists_ = open ? with_lists_ | bit : with_lists_ & ~bit;
        }
    }

    TokenStream& tokens_;
    const ClassifyOptions& options_;
    Token previous_; // the token before current_; `end` before the first one
    Token current_;
    std::size_t depth_ = 0;        // open parentheses and brackets
    std::uint64_t with_lists_ = 0; // bit d: the list of a WITH at depth d is still going on
    bool cte_name_next_ = false;   // the next name is a CTE's, and '(' after it its column list
    bool unlisted_call_ = false;   // let through only by default_transaction_read_only
};

Classification QueryScanner::run(bool inside_parens) noexcept {
    for (;;) {
        const Token token = take();
        const bool cte_name = std::exchange(cte_name_next_, false);
        // After the ')' of a CTE at this depth: a comma brings the next CTE, AS the body of
        // this one (the ')' closed its column list); anything else is the main statement.
        if (previous_.kind == TokenKind::right_paren && in_with_list()) {
            if (token.kind == TokenKind::comma) {
                cte_name_next_ = true;
            } else if (!token.is_keyword("as")) {
                set_with_list(false);
            }
        }
        std::optional<Classification> verdict;
        switch (token.kind) {
        case TokenKind::end:
            return depth_ == 0 && !inside_parens ? finish()
                                                 : Classification::primary(Reason::unparsable);
        case TokenKind::invalid:
            return Classification::primary(Reason::unparsable);
        case TokenKind::left_paren:
        case TokenKind::left_bracket:
            ++depth_;
            set_with_list(false);
            break;
        case TokenKind::right_paren:
        case TokenKind::right_bracket:
            if (depth_ == 0) {
                return inside_parens && token.kind == TokenKind::right_paren
                           ? finish()
                           : Classification::primary(Reason::unparsable);
            }
            --depth_;
            break;
        case TokenKind::word:
            verdict = word(token, cte_name);
            break;
        case TokenKind::quoted_identifier:
            verdict = name(cte_name);
            break;
        default:
            break;
        }
        if (verdict) {
            return *verdict;
        }
    }
}

std::optional<Classification> QueryScanner::word(const Token& token, bool cte_name) noexcept {
    if (token.is_keyword("for")) {
        const Token& next = tokens_.peek();
        if (next.is_keyword("update") || next.is_keyword("share") || next.is_keyword("no") ||
            next.is_keyword("key")) {
            return Classification::primary(Reason::locking_clause);
        }
        return std::nullopt; // SUBSTRING(x FOR n), FOR ORDINALITY, FOR READ ONLY
    }
    if (token.is_keyword("into")) {
        // SELECT INTO creates a table; INSERT INTO and MERGE INTO have stopped the scan already.
        return Classification::primary(Reason::select_into);
    }
    if (token.is_keyword("insert") || token.is_keyword("update") || token.is_keyword("delete") ||
        token.is_keyword("merge")) {
        // At the top level it is the statement after a WITH list; deeper, a CTE's body. A column
        // named "update" lands here too and goes to the primary, which is only slower.
        return Classification::primary(depth_ == 0 ? Reason::write_statement
                                                   : Reason::modifying_cte);
    }
    // A WITH list can only open a query: elsewhere WITH is WITH ORDINALITY, WITH TIME ZONE, ...
    if (token.is_keyword("with") &&
        (previous_.kind == TokenKind::end || previous_.kind == TokenKind::left_paren)) {
        set_with_list(true);
        cte_name_next_ = true;
        if (tokens_.peek().is_keyword("recursive")) {
            take();
        }
        return std::nullopt;
    }
    return name(cte_name);
}

// current_ starts a name, perhaps qualified (schema.f, "Schema"."f", db.schema.f). Followed by
// '(', it is a call unless the grammar says otherwise.
std::optional<Classification> QueryScanner::name(bool cte_name) noexcept {
    const Token before = previous_;
    const Token first = current_;
    Token schema;
    Token last = first;
    bool qualified = false;
    while (tokens_.peek().kind == TokenKind::dot) {
        take();
        if (!tokens_.peek().is_name()) {
            break; // t.*
        }
        schema = last;
        last = take();
        qualified = true;
    }
    if (tokens_.peek().kind != TokenKind::left_paren || cte_name ||
        !is_call(first, qualified, before)) {
        return std::nullopt;
    }
    return call(qualified ? &schema : nullptr, last);
}

bool QueryScanner::is_call(const Token& first, bool qualified, const Token& before) noexcept {
    // Names in these places take a parenthesis without being called: an alias's column list
    // (f(x) AS t(a), f(x) t(a), WITH ORDINALITY t(a, n)), a type's modifier (x::numeric(10, 2),
    // CAST(x AS bpchar(3))), a window or filter clause after a call (OVER (...), FILTER (...)).
    if (before.kind == TokenKind::right_paren || before.is_keyword("as") ||
        before.is_keyword("ordinality") || (before.kind == TokenKind::op && before.text == "::")) {
        return false;
    }
    if (qualified || first.kind != TokenKind::word) {
        return true;
    }
    const Identifier word(first);
    if (!word.known()) {
        return true;
    }
    if (not_a_call.contains(word.view())) {
        return false;
    }
    if (word == "varying") { // CHARACTER VARYING(n), BIT VARYING(n)
        return !(before.is_keyword("char") || before.is_keyword("character") ||
                 before.is_keyword("nchar") || before.is_keyword("bit"));
    }
    if (word == "rollup" || word == "cube") { // GROUP BY ROLLUP (a, b)
        return !before.is_keyword("by");
    }
    if (word == "sets") { // GROUPING SETS (...)
        return !before.is_keyword("grouping");
    }
    if (word == "materialized") { // WITH a AS NOT MATERIALIZED (...)
        return !before.is_keyword("not");
    }
    return true;
}

std::optional<Classification> QueryScanner::call(const Token* schema,
                                                 const Token& function) noexcept {
    const Identifier name(function);
    if (!name.known()) {
        // Nothing to check it against, not even the forbidden list: unknown means primary, with
        // default_transaction_read_only on as well.
        return Classification::primary(Reason::function_not_allowed);
    }
    std::optional<std::string_view> schema_name;
    std::optional<Identifier> qualifier;
    if (schema != nullptr) {
        qualifier.emplace(*schema);
        // An unknown schema name still qualifies the call; the empty name matches no list.
        schema_name = qualifier->known() ? qualifier->view() : std::string_view{};
    }
    switch (classify_function(schema_name, name.view(), options_.read_only_functions)) {
    case FunctionKind::read_only:
        return std::nullopt;
    case FunctionKind::unlisted:
        if (options_.default_transaction_read_only) {
            unlisted_call_ = true;
            return std::nullopt;
        }
        return Classification::primary(Reason::function_not_allowed);
    case FunctionKind::forbidden:
        return Classification::primary(Reason::function_forbidden);
    }
    return Classification::primary(Reason::function_not_allowed);
}

} // namespace

Classification classify_query(TokenStream& tokens, const ClassifyOptions& options,
                              bool inside_parens) noexcept {
    return QueryScanner(tokens, options).run(inside_parens);
}

} // namespace routing

#pragma once

#include "routing/classify.hpp"
#include "routing/token_stream.hpp"

namespace routing {

// The read-only proof for a query: SELECT, WITH, VALUES, TABLE, or any of them in parentheses.
// Reads to the end of the statement, or, with `inside_parens`, up to and including the ')' that
// closes a '(' the caller has already taken (COPY (query) TO ...).
//
// Answers replica_ok (read_only_select, or default_read_only when only the client's setting
// let an unlisted function through) or primary with the first reason found: a locking clause,
// INTO, INSERT / UPDATE / DELETE / MERGE anywhere (a data-modifying WITH, or the statement that
// follows the WITH list), a call to a function that is not allowed, or unbalanced parentheses.
[[nodiscard]] Classification classify_query(TokenStream& tokens, const ClassifyOptions& options,
                                            bool inside_parens) noexcept;

} // namespace routing

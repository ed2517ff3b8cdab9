#pragma once

// The statements that open a transaction block or change where later ones go: BEGIN, START
// TRANSACTION, SET and RESET. Each reads the tokens after its first word(s).

#include "routing/classify.hpp"
#include "routing/token_stream.hpp"

namespace routing {

// After BEGIN [WORK | TRANSACTION] or START TRANSACTION.
[[nodiscard]] Classification classify_begin(TokenStream& tokens,
                                            const ClassifyOptions& options) noexcept;
// After SET.
[[nodiscard]] Classification classify_set(TokenStream& tokens) noexcept;
// After RESET.
[[nodiscard]] Classification classify_reset(TokenStream& tokens) noexcept;

} // namespace routing

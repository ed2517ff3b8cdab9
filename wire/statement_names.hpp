#pragma once

// Parse and Bind as the prepared statement cache sees them (reference.md 3, steps 5 and 6): the
// statement name exposed so that it can be renamed (client name <-> PGMARINA_<n>), every other
// byte kept as it came and written back untouched. Bind's formats and values are not decoded at
// all; the server checks them. Describe and Close need no such view: fe::Describe and fe::Close
// already hold nothing but the kind and the name.

#include "wire/message.hpp"

#include <cstddef>
#include <span>
#include <string_view>

namespace wire::fe {

struct ParseView {
    static constexpr char type = 'P';
    std::string_view statement; // empty: the unnamed statement
    // The query String, the Int16 parameter count and the type OIDs, as sent: what identifies
    // the statement in pool::StatementRegistry, and what a Parse re-sent to another server
    // carries.
    std::span<const std::byte> query_and_types;

    static auto layout(auto& m) {
        return detail::layout(m.statement, detail::Rest{m.query_and_types});
    }
    // Checks the whole layout of a Parse, like fe::Parse::parse but without copying the OIDs:
    // the bytes become a cache key and are sent again later, so they must be a valid Parse tail.
    [[nodiscard]] static Result<ParseView> parse(const Frame& frame);
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct BindView {
    static constexpr char type = 'B';
    std::string_view portal;    // empty: the unnamed portal
    std::string_view statement; // empty: the unnamed statement
    // Parameter formats, values and result formats, as sent.
    std::span<const std::byte> rest;

    static auto layout(auto& m) {
        return detail::layout(m.portal, m.statement, detail::Rest{m.rest});
    }
    [[nodiscard]] static Result<BindView> parse(const Frame& frame) {
        return detail::parse<BindView>(frame);
    }
    // The names of a Bind from the start of it (wire::Framer::Piece::frame of a long message,
    // or a whole one): `rest` is then the part of the body that has arrived after them. Both
    // names are short, so a Bind too long to hold can still be renamed as it streams through.
    [[nodiscard]] static Result<BindView> parse_start(const Frame& start) noexcept;
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// The query text of a valid ParseView::query_and_types (everything before the first NUL), for
// logs and SHOW commands.
[[nodiscard]] std::string_view query_of(std::span<const std::byte> query_and_types) noexcept;

} // namespace wire::fe

#include "wire/statement_names.hpp"

#include <algorithm>

namespace wire::fe {
namespace {

// Query String, Int16 count, that many Int32 OIDs, nothing after: the checks fe::Parse makes.
Result<void> check_query_and_types(std::span<const std::byte> bytes) noexcept {
    Reader r(bytes);
    if (auto query = r.cstr(); !query) {
        return query.error();
    }
    const auto count = r.u16();
    if (!count) {
        return count.error();
    }
    constexpr std::size_t oid_size = 4;
    if (auto oids = r.bytes(std::size_t{*count} * oid_size); !oids) {
        return oids.error();
    }
    return r.expect_end();
}

} // namespace

Result<ParseView> ParseView::parse(const Frame& frame) {
    auto view = detail::parse<ParseView>(frame);
    if (!view) {
        return view;
    }
    if (auto ok = check_query_and_types(view->query_and_types); !ok) {
        return ok.error();
    }
    return view;
}

Result<BindView> BindView::parse_start(const Frame& start) noexcept {
    Reader r(start.body);
    auto portal = r.cstr();
    if (!portal) {
        return portal.error();
    }
    auto statement = r.cstr();
    if (!statement) {
        return statement.error();
    }
    const std::size_t names = portal->size() + statement->size() + 2;
    return BindView{*portal, *statement, start.body.subspan(names)};
}

std::string_view query_of(std::span<const std::byte> query_and_types) noexcept {
    const auto nul = std::ranges::find(query_and_types, std::byte{0});
    return {reinterpret_cast<const char*>(query_and_types.data()),
            static_cast<std::size_t>(nul - query_and_types.begin())};
}

} // namespace wire::fe

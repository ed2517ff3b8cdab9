#pragma once

// Which functions a query may call and still run on a replica. The classifier sees only text,
// never the catalog, so these lists stand in for it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace routing {

enum class FunctionKind : std::uint8_t {
    read_only,  // on the built-in allowlist or configured: a replica may run it
    unlisted,   // not known to be read-only
    forbidden,  // never on a replica, whatever the configuration says
};

// `schema` and `name` are resolved names (see Identifier); `schema` is nullopt for an
// unqualified call. The built-in allowlist matches only unqualified and pg_catalog calls: any
// other schema may hold a function of the same name that writes (public.lower). An unqualified
// name is trusted to resolve to the built-in, which holds unless someone shadows a pg_catalog
// function with an overload of their own; the text alone cannot tell.
//
// `configured` is the database's read_only_functions: "name" matches what the built-in list
// would (an unqualified or pg_catalog call), "schema.name" a call qualified exactly so. Names
// are compared as the catalog stores them: lower case unless they were created quoted.
// The forbidden list wins over both lists and over any qualification.
[[nodiscard]] FunctionKind classify_function(std::optional<std::string_view> schema,
                                             std::string_view name,
                                             std::span<const std::string> configured) noexcept;

} // namespace routing

#include "wire/be_query.hpp"

#include <algorithm>
#include <iterator>

namespace wire::be {

RowDescription RowDescription::text_columns(std::span<const std::string_view> names) {
    RowDescription description;
    description.fields.reserve(names.size());
    std::ranges::transform(names, std::back_inserter(description.fields), &Field::text);
    return description;
}

DataRow DataRow::text(std::span<const std::optional<std::string_view>> values) {
    DataRow row;
    row.values.reserve(values.size());
    std::ranges::transform(values, std::back_inserter(row.values), [](const auto& value) -> Value {
        if (!value) {
            return std::nullopt;
        }
        return wire::as_bytes(*value);
    });
    return row;
}

} // namespace wire::be

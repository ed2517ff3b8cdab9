#include "proxy/settings_codecs.hpp"

#include <algorithm>
#include <climits>
#include <tuple>

namespace proxy {

namespace {

using Show = std::string (*)(std::int64_t); // prints a limit in the key's unit

void wrong_type(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                std::string_view expected) {
    diag.error(node.source(), "'" + std::string(spec.name) + "' must be " + std::string(expected) +
                                  ", not " + std::string(describe_node(node)));
}

// Checks spec.min <= value <= min(spec.max, type_max).
bool check_range(const toml::node& node, const KeySpec& spec, Diagnostics& diag, std::int64_t value,
                 std::int64_t type_max, Show show) {
    std::int64_t max = std::min(spec.max, type_max);
    if (value >= spec.min && value <= max) {
        return true;
    }
    std::string message = "'" + std::string(spec.name) + "' must be ";
    if (value < spec.min && max == type_max) {
        message += "at least " + show(spec.min);
    } else {
        message += "between " + show(spec.min) + " and " + show(max);
    }
    diag.error(node.source(), message + ", not " + show(value));
    return false;
}

std::string show_int(std::int64_t value) {
    return std::to_string(value);
}

std::string show_duration(std::int64_t micros) {
    return format_duration(Duration{micros});
}

std::string show_size(std::int64_t bytes) {
    return format_size(ByteSize{static_cast<std::uint64_t>(bytes)});
}

std::string range_text(const KeySpec& spec, std::int64_t type_max, Show show) {
    if (spec.max < type_max) {
        return ", " + show(spec.min) + ".." + show(spec.max);
    }
    if (spec.min != 0) {
        return ", >= " + show(spec.min);
    }
    return {};
}

template <class T>
std::string format_array(const std::vector<T>& values) {
    std::string out = "[";
    for (const T& value : values) {
        out += (out.size() > 1 ? ", " : "") + format_value(value);
    }
    return out + "]";
}

} // namespace

std::string_view describe_node(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
        return "a date or time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

void Diagnostics::error(const toml::source_region& where, std::string message) {
    errors_.push_back(
        ConfigError{origin_, where.begin.line, where.begin.column, std::move(message)});
}

std::vector<ConfigError> Diagnostics::take() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
        return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return std::move(errors_);
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, bool& out) {
    const auto* value = node.as_boolean();
    if (value == nullptr) {
        wrong_type(node, spec, diag, "true or false");
        return false;
    }
    out = value->get();
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, int& out) {
    const auto* value = node.as_integer();
    if (value == nullptr) {
        wrong_type(node, spec, diag, "an integer");
        return false;
    }
    if (!check_range(node, spec, diag, value->get(), INT_MAX, show_int)) {
        return false;
    }
    out = static_cast<int>(value->get());
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::string& out) {
    const auto* value = node.as_string();
    if (value == nullptr) {
        wrong_type(node, spec, diag, "a string");
        return false;
    }
    if (spec.non_empty && value->get().empty()) {
        diag.error(node.source(), "'" + std::string(spec.name) + "' must not be empty");
        return false;
    }
    out = value->get();
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::vector<std::string>& out) {
    const auto* array = node.as_array();
    if (array == nullptr) {
        wrong_type(node, spec, diag, "an array of strings");
        return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (const toml::node& element : *array) {
        const auto* text = element.as_string();
        if (text == nullptr || text->get().empty()) {
            diag.error(element.source(), "elements of '" + std::string(spec.name) +
                                             "' must be non-empty strings, not " +
                                             (text ? "\"\"" : std::string(describe_node(element))));
            ok = false;
            continue;
        }
        values.push_back(text->get());
    }
    if (ok) {
        out = std::move(values);
    }
    return ok;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, Duration& out) {
    std::string error;
    std::optional<Duration> value;
    if (const auto* integer = node.as_integer()) {
        value = duration_from_seconds(integer->get(), error);
    } else if (const auto* number = node.as_floating_point()) {
        value = duration_from_seconds(number->get(), error);
    } else if (const auto* text = node.as_string()) {
        value = parse_duration(text->get(), error);
    } else {
        wrong_type(node, spec, diag, "a duration (seconds, or a string such as \"30s\")");
        return false;
    }
    if (!value) {
        diag.error(node.source(), "'" + std::string(spec.name) + "': " + error);
        return false;
    }
    if (!check_range(node, spec, diag, value->count(), std::numeric_limits<Duration::rep>::max(),
                     show_duration)) {
        return false;
    }
    out = *value;
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, ByteSize& out) {
    std::string error;
    std::optional<ByteSize> value;
    if (const auto* integer = node.as_integer()) {
        if (integer->get() < 0) {
            error = "a size must not be negative";
        } else {
            value = ByteSize{static_cast<std::uint64_t>(integer->get())};
        }
    } else if (const auto* text = node.as_string()) {
        value = parse_size(text->get(), error);
    } else {
        wrong_type(node, spec, diag, "a size (bytes, or a string such as \"64kB\")");
        return false;
    }
    if (!value) {
        diag.error(node.source(), "'" + std::string(spec.name) + "': " + error);
        return false;
    }
    constexpr auto type_max = std::numeric_limits<std::int64_t>::max();
    auto bytes = static_cast<std::int64_t>(std::min<std::uint64_t>(value->bytes, type_max));
    if (!check_range(node, spec, diag, bytes, type_max, show_size)) {
        return false;
    }
    out = *value;
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, Endpoint& out) {
    const auto* text = node.as_string();
    if (text == nullptr) {
        wrong_type(node, spec, diag, "an address string such as \"host:port\"");
        return false;
    }
    std::string error;
    auto endpoint = parse_endpoint(text->get(), spec.address, error);
    if (!endpoint) {
        diag.error(node.source(), "'" + std::string(spec.name) + "': " + error);
        return false;
    }
    out = std::move(*endpoint);
    return true;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::vector<Endpoint>& out) {
    const auto* array = node.as_array();
    if (array == nullptr) {
        wrong_type(node, spec, diag, "an array of address strings such as [\"host:port\"]");
        return false;
    }
    if (spec.non_empty && array->empty()) {
        diag.error(node.source(), "'" + std::string(spec.name) + "' must not be empty");
        return false;
    }
    std::vector<Endpoint> values;
    bool ok = true;
    for (const toml::node& element : *array) {
        Endpoint endpoint;
        if (!decode_value(element, spec, diag, endpoint)) {
            ok = false;
        } else if (std::find(values.begin(), values.end(), endpoint) != values.end()) {
            diag.error(element.source(), "duplicate address " + quote_string(endpoint.to_string()) +
                                             " in '" + std::string(spec.name) + "'");
            ok = false;
        } else {
            values.push_back(std::move(endpoint));
        }
    }
    if (ok) {
        out = std::move(values);
    }
    return ok;
}

bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::optional<Endpoint>& out) {
    const auto* text = node.as_string();
    if (text != nullptr && text->get().empty()) {
        out.reset();
        return true;
    }
    Endpoint endpoint;
    if (!decode_value(node, spec, diag, endpoint)) {
        return false;
    }
    out = std::move(endpoint);
    return true;
}

std::optional<std::size_t> decode_choice(const toml::node& node, const KeySpec& spec,
                                         Diagnostics& diag,
                                         std::span<const std::string_view> names) {
    const auto* text = node.as_string();
    auto found = text == nullptr ? names.end() : std::find(names.begin(), names.end(), text->get());
    if (found != names.end()) {
        return static_cast<std::size_t>(found - names.begin());
    }
    std::string expected = "one of ";
    for (std::size_t i = 0; i < names.size(); ++i) {
        expected += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + quote_string(names[i]);
    }
    if (text == nullptr) {
        wrong_type(node, spec, diag, expected);
    } else {
        diag.error(node.source(), "'" + std::string(spec.name) + "' must be " + expected +
                                      ", not " + quote_string(text->get()));
    }
    return std::nullopt;
}

std::string format_value(bool value) {
    return value ? "true" : "false";
}

std::string format_value(int value) {
    return std::to_string(value);
}

std::string format_value(const std::string& value) {
    return quote_string(value);
}

std::string format_value(const std::vector<std::string>& value) {
    return format_array(value);
}

std::string format_value(Duration value) {
    return quote_string(format_duration(value));
}

std::string format_value(ByteSize value) {
    std::string text = format_size(value);
    bool bare_number =
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    return bare_number ? text : quote_string(text);
}

std::string format_value(const Endpoint& value) {
    return quote_string(value.to_string());
}

std::string format_value(const std::vector<Endpoint>& value) {
    return format_array(value);
}

std::string format_value(const std::optional<Endpoint>& value) {
    return value ? format_value(*value) : quote_string("");
}

std::string type_text(const KeySpec&, std::type_identity<bool>) {
    return "boolean";
}

std::string type_text(const KeySpec& spec, std::type_identity<int>) {
    return "integer" + range_text(spec, INT_MAX, show_int);
}

std::string type_text(const KeySpec& spec, std::type_identity<std::string>) {
    return spec.non_empty ? "string, not empty" : "string";
}

std::string type_text(const KeySpec&, std::type_identity<std::vector<std::string>>) {
    return "array of strings";
}

std::string type_text(const KeySpec& spec, std::type_identity<Duration>) {
    return "duration" + range_text(spec, std::numeric_limits<Duration::rep>::max(), show_duration);
}

std::string type_text(const KeySpec& spec, std::type_identity<ByteSize>) {
    return "size" + range_text(spec, std::numeric_limits<std::int64_t>::max(), show_size);
}

std::string type_text(const KeySpec&, std::type_identity<Endpoint>) {
    return "address";
}

std::string type_text(const KeySpec& spec, std::type_identity<std::vector<Endpoint>>) {
    return spec.non_empty ? "array of addresses, not empty" : "array of addresses";
}

std::string type_text(std::span<const std::string_view> names) {
    std::string out;
    for (std::string_view name : names) {
        out += (out.empty() ? "" : ", ") + std::string(name);
    }
    return "one of: " + out;
}

} // namespace proxy

// Reading one TOML value into one typed setting, and writing a setting back as TOML text.
//
// There is one overload of `decode_value`, `format_value` and `type_text` per type a setting may
// have. The settings tables (settings.hpp) pick the overload from the member's type, so adding a
// key of an existing type needs no code here. Internal to the config loader.
#pragma once

#include "proxy/config.hpp"
#include "proxy/config_values.hpp"

#include <toml++/toml.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace proxy {

// Collects the problems of one file, each with its position.
class Diagnostics {
public:
    explicit Diagnostics(std::string origin) : origin_(std::move(origin)) {}

    void error(const toml::source_region& where, std::string message);

    [[nodiscard]] bool empty() const noexcept { return errors_.empty(); }
    // The errors sorted by position (TOML tables iterate by key, not in file order).
    [[nodiscard]] std::vector<ConfigError> take();

private:
    std::string origin_;
    std::vector<ConfigError> errors_;
};

// "a string", "an integer", …: what the file holds where something else was expected.
[[nodiscard]] std::string_view describe_node(const toml::node& node);

enum class Reload {
    online,  // RELOAD applies it
    restart, // bound at startup (sockets, threads, buffers); RELOAD keeps the running value
};

// What a settings table says about one key, apart from where its value lives.
struct KeySpec {
    std::string_view name;
    std::string_view description; // one line; also the comment above the key in etc/
    Reload reload = Reload::online;
    bool required = false;
    bool non_empty = false; // strings and arrays: "" or [] is an error
    // Inclusive limits for integers (the value), sizes (bytes) and durations (microseconds).
    std::int64_t min = 0;
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    AddressRules address;         // for address keys
    std::string_view default_doc; // shown instead of the formatted default, e.g. for inherits
    bool secret = false;          // a password: SHOW CONFIG does not show its value
};

// Each decode_value reports its problems to `diag` at the offending node (or array element) and
// leaves `out` untouched on failure.
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, bool& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, int& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, std::string& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::vector<std::string>& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, Duration& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, ByteSize& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, Endpoint& out);
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::vector<Endpoint>& out);
// An optional endpoint is a listener that "" switches off (metrics.listen).
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::optional<Endpoint>& out);

// The choice `node` names among `names`, as an index.
std::optional<std::size_t> decode_choice(const toml::node& node, const KeySpec& spec,
                                         Diagnostics& diag,
                                         std::span<const std::string_view> names);

template <class E>
requires std::is_enum_v<E>
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag, E& out) {
    auto index = decode_choice(node, spec, diag, EnumNames<E>::names);
    if (index) {
        out = static_cast<E>(*index);
    }
    return index.has_value();
}

// An optional per-database or per-user value: present in the file means set.
template <class T>
bool decode_value(const toml::node& node, const KeySpec& spec, Diagnostics& diag,
                  std::optional<T>& out) {
    T value{};
    if (!decode_value(node, spec, diag, value)) {
        return false;
    }
    out = std::move(value);
    return true;
}

// The value as TOML source text, e.g. `20`, `"DISCARD ALL"`, `"5s"`, `["127.0.0.1:6432"]`.
std::string format_value(bool value);
std::string format_value(int value);
std::string format_value(const std::string& value);
std::string format_value(const std::vector<std::string>& value);
std::string format_value(Duration value);
std::string format_value(ByteSize value);
std::string format_value(const Endpoint& value);
std::string format_value(const std::vector<Endpoint>& value);
std::string format_value(const std::optional<Endpoint>& value);

template <class E>
requires std::is_enum_v<E> std::string format_value(E value) {
    return format_value(std::string(to_string(value)));
}

// Unset optionals have no TOML form; the tables document them with KeySpec::default_doc.
template <class T>
std::string format_value(const std::optional<T>& value) {
    return value ? format_value(*value) : std::string();
}

// The value's type for the settings reference, with the key's limits: "integer, 0..256".
std::string type_text(const KeySpec& spec, std::type_identity<bool>);
std::string type_text(const KeySpec& spec, std::type_identity<int>);
std::string type_text(const KeySpec& spec, std::type_identity<std::string>);
std::string type_text(const KeySpec& spec, std::type_identity<std::vector<std::string>>);
std::string type_text(const KeySpec& spec, std::type_identity<Duration>);
std::string type_text(const KeySpec& spec, std::type_identity<ByteSize>);
std::string type_text(const KeySpec& spec, std::type_identity<Endpoint>);
std::string type_text(const KeySpec& spec, std::type_identity<std::vector<Endpoint>>);
std::string type_text(std::span<const std::string_view> names);

template <class E>
requires std::is_enum_v<E> std::string type_text(const KeySpec&, std::type_identity<E>) {
    return type_text(EnumNames<E>::names);
}

template <class T>
std::string type_text(const KeySpec& spec, std::type_identity<std::optional<T>>) {
    return type_text(spec, std::type_identity<T>{});
}

} // namespace proxy

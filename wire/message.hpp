#pragma once

// What every message family shares: the value types that recur across messages, and the
// layout machinery that derives a message's parse() and encode() from one list of its fields,
// so the two directions cannot drift apart.

#include "wire/frame.hpp"
#include "wire/reader.hpp"
#include "wire/result.hpp"
#include "wire/writer.hpp"

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace wire {

// A parameter or column value: Int32 length, then that many bytes; length -1 is SQL NULL
// (protocol docs, "Message Formats": Bind, DataRow, FunctionCall, FunctionCallResponse).
using Value = std::optional<std::span<const std::byte>>;

enum class FormatCode : std::int16_t { text = 0, binary = 1 };

[[nodiscard]] constexpr bool is_valid(FormatCode f) noexcept {
    return f == FormatCode::text || f == FormatCode::binary;
}

[[nodiscard]] inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
    return std::as_bytes(std::span(s));
}

namespace detail {

// A message type plugs into this machinery by declaring
//     static constexpr char type = 'X';        // '\0' for startup-phase packets
//     static constexpr std::int32_t code = N;  // only where a code follows the length word
//     static auto layout(auto& m) { return detail::layout(m.first, m.second); }
// and forwarding its parse()/encode() to detail::parse/detail::encode below (or, without
// fields, deriving from Bodiless). List items (RowDescription::Field, ...) declare layout only.

// Adaptors for members whose C++ type alone does not say how they sit on the wire. A plain
// std::vector member is an Int16 count followed by the items.
template <class T>
struct Rest { // every byte left in the body
    T& bytes;
};
template <class T>
struct Terminated { // items until a NUL byte where the next item would start
    T& items;
};
template <class T>
struct Int32Counted { // an Int32 count, then the items
    T& items;
};
// A cancel key secret, the rest of the body: 4 bytes in protocol 3.0, up to 256 in 3.2
// (protocol docs, BackendKeyData and CancelRequest).
template <class T>
struct SecretKey {
    T& bytes;
};
template <class T>
Rest(T&) -> Rest<T>;
template <class T>
Terminated(T&) -> Terminated<T>;
template <class T>
Int32Counted(T&) -> Int32Counted<T>;
template <class T>
SecretKey(T&) -> SecretKey<T>;

inline constexpr std::size_t min_secret_key = 4;
inline constexpr std::size_t max_secret_key = 256;

// A message's or list item's fields in wire order. Members are held by reference, adaptors
// by value: `return detail::layout(m.name, detail::Rest{m.data});`.
template <class... Fields>
[[nodiscard]] constexpr std::tuple<Fields...> layout(Fields&&... fields) noexcept {
    return std::tuple<Fields...>(std::forward<Fields>(fields)...);
}

template <class T>
concept Structured = requires(T& t) {
    T::layout(t);
};

template <class T>
concept Scalar = std::is_integral_v<T> || std::is_enum_v<T>;

// The unsigned integer a scalar travels as: an enum by its underlying type (a protocol char
// as a Byte1), an integer by its own width.
template <Scalar T>
using WireInt =
    std::make_unsigned_t<typename std::conditional_t<std::is_enum_v<T>, std::underlying_type<T>,
                                                     std::type_identity<T>>::type>;

// The fewest bytes one list item can occupy; bounds a peer's count before anything is
// reserved for it.
template <class T>
[[nodiscard]] consteval std::size_t min_wire_size() {
    if constexpr (Scalar<T>) {
        return sizeof(T);
    } else if constexpr (std::same_as<T, std::string_view>) {
        return 1;
    } else if constexpr (std::same_as<T, Value>) {
        return 4;
    } else {
        static_assert(Structured<T>, "no wire size for this list item");
        using Fields = decltype(T::layout(std::declval<T&>()));
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return (min_wire_size<std::remove_cvref_t<std::tuple_element_t<I, Fields>>>() + ...);
        }
        (std::make_index_sequence<std::tuple_size_v<Fields>>());
    }
}

[[nodiscard]] Result<void> read_field(Reader& r, std::string_view& out) noexcept;
[[nodiscard]] Result<void> read_field(Reader& r, Value& out) noexcept;
template <Scalar T>
[[nodiscard]] Result<void> read_field(Reader& r, T& out) noexcept;
template <std::size_t N>
[[nodiscard]] Result<void> read_field(Reader& r, std::array<std::byte, N>& out) noexcept;
template <class T>
[[nodiscard]] Result<void> read_field(Reader& r, std::vector<T>& out);
template <Structured T>
[[nodiscard]] Result<void> read_field(Reader& r, T& out);
template <class T>
[[nodiscard]] Result<void> read_field(Reader& r, Rest<T> out) noexcept;
template <class T>
[[nodiscard]] Result<void> read_field(Reader& r, Terminated<T> out);
template <class T>
[[nodiscard]] Result<void> read_field(Reader& r, Int32Counted<T> out);
template <class T>
[[nodiscard]] Result<void> read_field(Reader& r, SecretKey<T> out) noexcept;

void write_field(Writer& w, std::string_view in);
void write_field(Writer& w, const Value& in);
template <Scalar T>
void write_field(Writer& w, T in);
template <std::size_t N>
void write_field(Writer& w, const std::array<std::byte, N>& in);
template <class T>
void write_field(Writer& w, const std::vector<T>& in);
template <Structured T>
void write_field(Writer& w, const T& in);
template <class T>
void write_field(Writer& w, Rest<T> in);
template <class T>
void write_field(Writer& w, Terminated<T> in);
template <class T>
void write_field(Writer& w, Int32Counted<T> in);
template <class T>
void write_field(Writer& w, SecretKey<T> in);

[[nodiscard]] Result<void> check_secret_key(std::span<const std::byte> secret) noexcept;

template <class Unsigned>
[[nodiscard]] Result<Unsigned> read_unsigned(Reader& r) noexcept {
    if constexpr (sizeof(Unsigned) == 1) {
        return r.u8();
    } else if constexpr (sizeof(Unsigned) == 2) {
        return r.u16();
    } else {
        static_assert(sizeof(Unsigned) == 4);
        return r.u32();
    }
}

template <Scalar T>
Result<void> read_field(Reader& r, T& out) noexcept {
    const auto raw = read_unsigned<WireInt<T>>(r);
    if (!raw) {
        return raw.error();
    }
    out = static_cast<T>(*raw);
    if constexpr (std::is_enum_v<T>) {
        if (!is_valid(out)) {
            return errc::invalid_value;
        }
    }
    return {};
}

template <Scalar T>
void write_field(Writer& w, T in) {
    using Int = WireInt<T>;
    const auto raw = static_cast<Int>(in);
    if constexpr (sizeof(Int) == 1) {
        w.put_u8(raw);
    } else if constexpr (sizeof(Int) == 2) {
        w.put_u16(raw);
    } else {
        w.put_u32(raw);
    }
}

template <std::size_t N>
Result<void> read_field(Reader& r, std::array<std::byte, N>& out) noexcept {
    auto got = r.bytes(N);
    if (!got) {
        return got.error();
    }
    std::copy(got->begin(), got->end(), out.begin());
    return {};
}

template <std::size_t N>
void write_field(Writer& w, const std::array<std::byte, N>& in) {
    w.put_bytes(in);
}

template <class Tuple>
[[nodiscard]] Result<void> read_fields(Reader& r, Tuple&& fields) {
    return std::apply(
        [&r](auto&&... field) {
            Result<void> ok;
            static_cast<void>((static_cast<bool>(ok = read_field(r, field)) && ...));
            return ok;
        },
        std::forward<Tuple>(fields));
}

template <class Tuple>
void write_fields(Writer& w, Tuple&& fields) {
    std::apply([&w](const auto&... field) { (write_field(w, field), ...); },
               std::forward<Tuple>(fields));
}

template <class T>
Result<void> read_items(Reader& r, std::vector<T>& out, std::size_t count) {
    if (auto fits = r.can_hold(count, min_wire_size<T>()); !fits) {
        return fits;
    }
    out.resize(count);
    for (auto& item : out) {
        if (auto ok = read_field(r, item); !ok) {
            return ok;
        }
    }
    return {};
}

template <class Count, class T>
void write_items(Writer& w, const std::vector<T>& in) {
    if (in.size() > static_cast<std::size_t>(std::numeric_limits<Count>::max())) {
        throw std::length_error("wire: list longer than its count field allows");
    }
    write_field(w, static_cast<Count>(in.size()));
    for (const auto& item : in) {
        write_field(w, item);
    }
}

// Counts are read as unsigned: the server reads them with pq_getmsgint(msg, 2) and accepts up
// to 65535 parameters, which a signed Int16 would turn negative.
template <class T>
Result<void> read_field(Reader& r, std::vector<T>& out) {
    auto count = r.u16();
    if (!count) {
        return count.error();
    }
    return read_items(r, out, *count);
}

template <class T>
void write_field(Writer& w, const std::vector<T>& in) {
    write_items<std::uint16_t>(w, in);
}

template <Structured T>
Result<void> read_field(Reader& r, T& out) {
    return read_fields(r, T::layout(out));
}

template <Structured T>
void write_field(Writer& w, const T& in) {
    write_fields(w, T::layout(in));
}

template <class T>
Result<void> read_field(Reader& r, Rest<T> out) noexcept {
    out.bytes = r.rest();
    return {};
}

template <class T>
void write_field(Writer& w, Rest<T> in) {
    w.put_bytes(in.bytes);
}

template <class T>
Result<void> read_field(Reader& r, Terminated<T> out) {
    for (;;) {
        Reader probe = r;
        auto next = probe.u8();
        if (!next) {
            return errc::missing_terminator;
        }
        if (*next == 0) {
            r = probe;
            return {};
        }
        if (auto ok = read_field(r, out.items.emplace_back()); !ok) {
            return ok;
        }
    }
}

template <class T>
void write_field(Writer& w, Terminated<T> in) {
    for (const auto& item : in.items) {
        write_field(w, item);
    }
    w.put_u8(0);
}

template <class T>
Result<void> read_field(Reader& r, Int32Counted<T> out) {
    auto count = r.i32();
    if (!count) {
        return count.error();
    }
    if (*count < 0) {
        return errc::invalid_value;
    }
    return read_items(r, out.items, static_cast<std::size_t>(*count));
}

template <class T>
void write_field(Writer& w, Int32Counted<T> in) {
    write_items<std::int32_t>(w, in.items);
}

template <class T>
Result<void> read_field(Reader& r, SecretKey<T> out) noexcept {
    const auto secret = r.rest();
    if (auto ok = check_secret_key(secret); !ok) {
        return ok;
    }
    out.bytes = secret;
    return {};
}

template <class T>
void write_field(Writer& w, SecretKey<T> in) {
    w.put_bytes(in.bytes);
}

template <class T>
concept Coded = requires {
    T::code;
};

// Startup-phase packets and Authentication messages begin with an Int32 code that selects
// the message (protocol docs, "Message Formats"); a different code is a different message.
template <class T>
[[nodiscard]] Result<void> read_code(Reader& r) noexcept {
    if constexpr (Coded<T>) {
        auto code = r.i32();
        if (!code) {
            return code.error();
        }
        if (*code != T::code) {
            return errc::unexpected_type;
        }
    }
    return {};
}

template <class T>
[[nodiscard]] Result<T> parse(const Frame& frame) {
    if (frame.type != T::type) {
        return errc::unexpected_type;
    }
    Reader r(frame.body);
    T message{};
    if (auto ok = read_code<T>(r); !ok) {
        return ok.error();
    }
    if constexpr (Structured<T>) {
        if (auto ok = read_field(r, message); !ok) {
            return ok.error();
        }
    }
    if (auto ok = r.expect_end(); !ok) {
        return ok.error();
    }
    return message;
}

template <class T>
void encode(Writer& w, const T& message) {
    if constexpr (T::type == '\0') {
        w.begin_untyped();
    } else {
        w.begin(T::type);
    }
    if constexpr (Coded<T>) {
        w.put_i32(T::code);
    }
    if constexpr (Structured<T>) {
        write_field(w, message);
    }
    w.end();
}

// parse() and encode() for a message with no fields (only a type byte, and perhaps a code):
// `struct Sync : detail::Bodiless<Sync> { static constexpr char type = 'S'; };`
template <class Derived>
struct Bodiless {
    [[nodiscard]] static Result<Derived> parse(const Frame& frame) {
        return detail::parse<Derived>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, static_cast<const Derived&>(*this)); }
};

// The code at the start of a startup packet or Authentication message, for dispatch.
[[nodiscard]] Result<std::int32_t> peek_code(const Frame& frame, char type) noexcept;

template <class T>
[[nodiscard]] constexpr bool has_code(std::int32_t code) noexcept {
    if constexpr (Coded<T>) {
        return T::code == code;
    } else {
        return false;
    }
}

// Parses `frame` as the alternative of Variant whose static code is `code`; std::nullopt if
// no alternative has that code.
template <class Variant>
[[nodiscard]] std::optional<Result<Variant>> parse_by_code(const Frame& frame, std::int32_t code) {
    std::optional<Result<Variant>> out;
    [&]<class... Ts>(std::type_identity<std::variant<Ts...>>) {
        static_cast<void>(((has_code<Ts>(code) && (out.emplace(Ts::parse(frame)), true)) || ...));
    }(std::type_identity<Variant>());
    return out;
}

} // namespace detail
} // namespace wire

#pragma once

// Byte builders for wire tests, written without wire::Writer so that expected bytes never come
// from the code under test: `msg('Z', "I")`, `cat({i32(7), str("name")})`,
// `error_response().code("57P01").message("bye").bytes()`. Also the checks every message
// parser must pass (wrong type, truncation, trailing bytes), shared by the message tests.

#include "wire/framer.hpp"
#include "wire/writer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wire::test {

using Bytes = std::vector<std::byte>;

// "5a 00000005 49": hex digits, spaces ignored.
inline Bytes hex(std::string_view digits) {
    Bytes out;
    int pending = -1;
    for (const char c : digits) {
        if (c == ' ') {
            continue;
        }
        const auto nibble = static_cast<int>(std::string_view("0123456789abcdef").find(c));
        if (nibble < 0) {
            throw std::invalid_argument("hex: not a lowercase hex digit");
        }
        if (pending < 0) {
            pending = nibble;
        } else {
            out.push_back(static_cast<std::byte>(pending * 16 + nibble));
            pending = -1;
        }
    }
    if (pending >= 0) {
        throw std::invalid_argument("hex: odd number of digits");
    }
    return out;
}

// The characters of `s`, without a terminator.
inline Bytes raw(std::string_view s) {
    Bytes out(s.size());
    std::ranges::transform(s, out.begin(), [](char c) { return static_cast<std::byte>(c); });
    return out;
}

// A protocol String: the characters and a NUL.
inline Bytes str(std::string_view s) {
    Bytes out = raw(s);
    out.push_back(std::byte{0});
    return out;
}

inline Bytes big_endian(std::uint32_t v, std::size_t size) {
    Bytes out(size);
    for (std::size_t i = size; i-- > 0; v >>= 8) {
        out[i] = static_cast<std::byte>(v & 0xff);
    }
    return out;
}

inline Bytes u8(std::uint8_t v) {
    return big_endian(v, 1);
}

inline Bytes i16(std::int16_t v) {
    return big_endian(static_cast<std::uint16_t>(v), 2);
}

inline Bytes i32(std::int32_t v) {
    return big_endian(static_cast<std::uint32_t>(v), 4);
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& part : parts) {
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

// A typed message: type byte, Int32 length counting itself, body.
inline Bytes msg(char type, const Bytes& body) {
    return cat({u8(static_cast<std::uint8_t>(type)),
                i32(static_cast<std::int32_t>(body.size() + 4)), body});
}

inline Bytes msg(char type, std::string_view body) {
    return msg(type, raw(body));
}

// A startup-phase packet: Int32 length counting itself, body (which starts with the code).
inline Bytes packet(const Bytes& body) {
    return cat({i32(static_cast<std::int32_t>(body.size() + 4)), body});
}

class ErrorResponseBuilder {
public:
    explicit ErrorResponseBuilder(char type) : type_(type) {}

    ErrorResponseBuilder& field(char code, std::string value) {
        fields_.emplace_back(code, std::move(value));
        return *this;
    }
    ErrorResponseBuilder& severity(std::string v) { return field('S', std::move(v)); }
    ErrorResponseBuilder& code(std::string v) { return field('C', std::move(v)); }
    ErrorResponseBuilder& message(std::string v) { return field('M', std::move(v)); }

    [[nodiscard]] Bytes bytes() const {
        Bytes body;
        for (const auto& [code, value] : fields_) {
            const auto item = cat({u8(static_cast<std::uint8_t>(code)), str(value)});
            body.insert(body.end(), item.begin(), item.end());
        }
        body.push_back(std::byte{0});
        return msg(type_, body);
    }

private:
    char type_;
    std::vector<std::pair<char, std::string>> fields_;
};

inline ErrorResponseBuilder error_response() {
    return ErrorResponseBuilder('E');
}

inline ErrorResponseBuilder notice_response() {
    return ErrorResponseBuilder('N');
}

template <class Message>
[[nodiscard]] Bytes encoded(const Message& m) {
    Writer w;
    m.encode(w);
    return w.take();
}

// The single frame that `bytes` must be exactly; its views point into `bytes`.
[[nodiscard]] inline Frame frame_of(const Bytes& bytes, Phase phase) {
    auto frame = decode_frame(bytes, phase, Limits{});
    REQUIRE(frame);
    REQUIRE(frame->has_value());
    REQUIRE((*frame)->raw.size() == bytes.size());
    return **frame;
}

template <class Message>
[[nodiscard]] Phase phase_of() {
    return Message::type == '\0' ? Phase::startup : Phase::typed;
}

// The parsed message's views point into `bytes`, so they must outlive it.
template <class Message>
[[nodiscard]] Result<Message> parse_as(const Bytes& bytes) {
    return Message::parse(frame_of(bytes, phase_of<Message>()));
}
template <class Message>
Result<Message> parse_as(const Bytes&& bytes) = delete;

// Why `bytes` does not parse as Message; a default error_code if it does.
template <class Message>
[[nodiscard]] boost::system::error_code parse_error(const Bytes& bytes) {
    const auto parsed = parse_as<Message>(bytes);
    return parsed ? boost::system::error_code() : parsed.error();
}

// `m` encodes to exactly `expected`, which parses back into a message that encodes the same.
template <class Message>
void check_encoding(const Message& m, const Bytes& expected) {
    CHECK(encoded(m) == expected);
    const auto parsed = parse_as<Message>(expected);
    REQUIRE(parsed);
    CHECK(encoded(*parsed) == expected);
}

[[nodiscard]] inline bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return std::ranges::equal(a, b);
}

// The frame's body under every other type byte is refused as unexpected_type.
template <class Message>
void check_rejects_wrong_type(const Bytes& message) {
    const Frame good = frame_of(message, phase_of<Message>());
    for (const char other : std::string_view("\0RZEdpQS", 8)) {
        if (other != Message::type) {
            CAPTURE(other);
            const Frame wrong{other, good.body, good.raw};
            CHECK(Message::parse(wrong).error() == errc::unexpected_type);
        }
    }
}

// Every strict prefix of the body is refused; for messages whose last field is not
// self-delimiting, give `keep` = the bytes that must be there for a prefix to fail.
template <class Message>
void check_rejects_truncation(const Bytes& message, std::size_t keep = 0) {
    const Frame good = frame_of(message, phase_of<Message>());
    for (std::size_t n = 0; n + keep < good.body.size(); ++n) {
        CAPTURE(n);
        const Frame cut{good.type, good.body.first(n), good.raw};
        CHECK_FALSE(Message::parse(cut));
    }
}

// One byte after the last field is refused as trailing_bytes.
template <class Message>
void check_rejects_trailing_bytes(const Bytes& message) {
    const Frame good = frame_of(message, phase_of<Message>());
    Bytes longer(good.body.begin(), good.body.end());
    longer.push_back(std::byte{'x'});
    const Frame bad{good.type, longer, good.raw};
    CHECK(Message::parse(bad).error() == errc::trailing_bytes);
}

// The three checks above, for messages whose every field is self-delimiting.
template <class Message>
void check_rejects_malformed(const Bytes& message) {
    check_rejects_wrong_type<Message>(message);
    check_rejects_truncation<Message>(message);
    check_rejects_trailing_bytes<Message>(message);
}

} // namespace wire::test

// Boost's operator<< for result<T> needs T to be printable, which frames and messages are not;
// doctest would pick it up when a REQUIRE on a Result fails and not compile.
template <class T>
struct doctest::StringMaker<wire::Result<T>> {
    static String convert(const wire::Result<T>& r) {
        return r ? String("a value") : String(("error: " + r.error().message()).c_str());
    }
};

#pragma once

// Packets a client may send before its StartupMessage is accepted (protocol docs, "Start-up",
// "Canceling Requests in Progress" and "Message Formats"). They have no type byte: each
// starts with an Int32 code, either a protocol version or a request code.

#include "wire/message.hpp"

#include <compare>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

namespace wire::fe {

// The code's most significant 16 bits are the major version, the rest the minor.
struct ProtocolVersion {
    std::uint16_t major = 3;
    std::uint16_t minor = 0;

    static auto layout(auto& m) { return detail::layout(m.major, m.minor); }
    friend constexpr auto operator<=>(const ProtocolVersion&, const ProtocolVersion&) = default;
};

inline constexpr ProtocolVersion protocol_3_0{3, 0}; // code 196608
inline constexpr ProtocolVersion protocol_3_2{3, 2}; // code 196610, variable-length cancel keys

struct Parameter {
    std::string_view name;
    std::string_view value;

    static auto layout(auto& m) { return detail::layout(m.name, m.value); }
    friend constexpr bool operator==(const Parameter&, const Parameter&) = default;
};

// Any minor version of major 3 parses: a client asking for more than we speak is answered
// with NegotiateProtocolVersion, not refused. Names must be non-empty: an empty name is the
// list terminator.
struct StartupMessage {
    static constexpr char type = '\0';
    ProtocolVersion version;
    std::vector<Parameter> parameters; // in the order sent

    static auto layout(auto& m) {
        return detail::layout(m.version, detail::Terminated{m.parameters});
    }
    // errc::unsupported_protocol for a major version other than 3 (protocol 2 included).
    [[nodiscard]] static Result<StartupMessage> parse(const Frame& frame);
    void encode(Writer& w) const { detail::encode(w, *this); }

    // The value of the first parameter called `name`.
    [[nodiscard]] std::optional<std::string_view> parameter(std::string_view name) const noexcept;
};

struct SSLRequest : detail::Bodiless<SSLRequest> {
    static constexpr char type = '\0';
    static constexpr std::int32_t code = 80877103;
};

struct GSSENCRequest : detail::Bodiless<GSSENCRequest> {
    static constexpr char type = '\0';
    static constexpr std::int32_t code = 80877104;
};

// Sent on a fresh connection; the server answers nothing and closes it.
struct CancelRequest {
    static constexpr char type = '\0';
    static constexpr std::int32_t code = 80877102;
    std::int32_t process_id = 0;
    std::span<const std::byte> secret_key; // 4 bytes in 3.0; up to 256 in 3.2

    static auto layout(auto& m) {
        return detail::layout(m.process_id, detail::SecretKey{m.secret_key});
    }
    [[nodiscard]] static Result<CancelRequest> parse(const Frame& frame) {
        return detail::parse<CancelRequest>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

using StartupPacket = std::variant<StartupMessage, SSLRequest, GSSENCRequest, CancelRequest>;

// Classifies the first packet of a connection (or the one after an SSL/GSS refusal).
[[nodiscard]] Result<StartupPacket> parse_startup_packet(const Frame& frame);

} // namespace wire::fe

#pragma once

// The server's Authentication requests: type 'R', then an Int32 code that says which request
// it is (protocol docs, "Message Formats" and "SASL Authentication").

#include "wire/message.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

namespace wire::be {

struct AuthenticationOk : detail::Bodiless<AuthenticationOk> {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 0;
};

// Obsolete since PostgreSQL 9.4, but still part of the protocol.
struct AuthenticationKerberosV5 : detail::Bodiless<AuthenticationKerberosV5> {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 2;
};

struct AuthenticationCleartextPassword : detail::Bodiless<AuthenticationCleartextPassword> {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 3;
};

struct AuthenticationMD5Password {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 5;
    std::array<std::byte, 4> salt{};

    static auto layout(auto& m) { return detail::layout(m.salt); }
    [[nodiscard]] static Result<AuthenticationMD5Password> parse(const Frame& frame) {
        return detail::parse<AuthenticationMD5Password>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

struct AuthenticationGSS : detail::Bodiless<AuthenticationGSS> {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 7;
};

struct AuthenticationSSPI : detail::Bodiless<AuthenticationSSPI> {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 9;
};

struct AuthenticationSASL {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = 10;
    std::vector<std::string_view> mechanisms; // in the server's order of preference

    static auto layout(auto& m) { return detail::layout(detail::Terminated{m.mechanisms}); }
    [[nodiscard]] static Result<AuthenticationSASL> parse(const Frame& frame) {
        return detail::parse<AuthenticationSASL>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// The requests that carry mechanism-specific data (the rest of the body) after their code.
template <std::int32_t Code>
struct AuthenticationData {
    static constexpr char type = 'R';
    static constexpr std::int32_t code = Code;
    std::span<const std::byte> data;

    static auto layout(auto& m) { return detail::layout(detail::Rest{m.data}); }
    [[nodiscard]] static Result<AuthenticationData> parse(const Frame& frame) {
        return detail::parse<AuthenticationData>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

using AuthenticationGSSContinue = AuthenticationData<8>;
using AuthenticationSASLContinue = AuthenticationData<11>; // a SCRAM server-first-message
using AuthenticationSASLFinal = AuthenticationData<12>;    // a SCRAM server-final-message

using Authentication =
    std::variant<AuthenticationOk, AuthenticationKerberosV5, AuthenticationCleartextPassword,
                 AuthenticationMD5Password, AuthenticationGSS, AuthenticationGSSContinue,
                 AuthenticationSSPI, AuthenticationSASL, AuthenticationSASLContinue,
                 AuthenticationSASLFinal>;

// Whichever Authentication request `frame` holds; errc::invalid_value for an unknown code.
[[nodiscard]] Result<Authentication> parse_authentication(const Frame& frame);

} // namespace wire::be

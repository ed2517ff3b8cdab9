#pragma once

// The client's side of authentication. All four messages share type 'p'; which one a frame
// holds depends on the Authentication request the server sent last (protocol docs, "Message
// Formats"), so the caller picks the parse.

#include "wire/message.hpp"

#include <span>
#include <string_view>

namespace wire::fe {

// Answers AuthenticationCleartextPassword or AuthenticationMD5Password.
struct PasswordMessage {
    static constexpr char type = 'p';
    std::string_view password; // cleartext, or "md5" followed by 32 hex digits

    static auto layout(auto& m) { return detail::layout(m.password); }
    [[nodiscard]] static Result<PasswordMessage> parse(const Frame& frame) {
        return detail::parse<PasswordMessage>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// Answers AuthenticationSASL: the chosen mechanism and the first client message.
struct SASLInitialResponse {
    static constexpr char type = 'p';
    std::string_view mechanism;
    Value data; // std::nullopt when the mechanism has no initial response (length -1)

    static auto layout(auto& m) { return detail::layout(m.mechanism, m.data); }
    [[nodiscard]] static Result<SASLInitialResponse> parse(const Frame& frame) {
        return detail::parse<SASLInitialResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// Answers AuthenticationSASLContinue.
struct SASLResponse {
    static constexpr char type = 'p';
    std::span<const std::byte> data;

    static auto layout(auto& m) { return detail::layout(detail::Rest{m.data}); }
    [[nodiscard]] static Result<SASLResponse> parse(const Frame& frame) {
        return detail::parse<SASLResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// Answers AuthenticationGSS / AuthenticationSSPI / AuthenticationGSSContinue.
struct GSSResponse {
    static constexpr char type = 'p';
    std::span<const std::byte> data;

    static auto layout(auto& m) { return detail::layout(detail::Rest{m.data}); }
    [[nodiscard]] static Result<GSSResponse> parse(const Frame& frame) {
        return detail::parse<GSSResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

} // namespace wire::fe

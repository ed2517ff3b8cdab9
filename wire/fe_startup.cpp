#include "wire/fe_startup.hpp"

#include <algorithm>

namespace wire::fe {

Result<StartupMessage> StartupMessage::parse(const Frame& frame) {
    // The version decides the layout of the rest (protocol 2 packets are fixed-size records),
    // so it is checked before anything else is read.
    auto code = detail::peek_code(frame, type);
    if (!code) {
        return code.error();
    }
    if ((static_cast<std::uint32_t>(*code) >> 16) != protocol_3_0.major) {
        return errc::unsupported_protocol;
    }
    return detail::parse<StartupMessage>(frame);
}

std::optional<std::string_view> StartupMessage::parameter(std::string_view name) const noexcept {
    const auto found = std::ranges::find(parameters, name, &Parameter::name);
    if (found == parameters.end()) {
        return std::nullopt;
    }
    return found->value;
}

Result<StartupPacket> parse_startup_packet(const Frame& frame) {
    auto code = detail::peek_code(frame, '\0');
    if (!code) {
        return code.error();
    }
    if (auto request = detail::parse_by_code<StartupPacket>(frame, *code)) {
        return *request;
    }
    return StartupMessage::parse(frame);
}

} // namespace wire::fe

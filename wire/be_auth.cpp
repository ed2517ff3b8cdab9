#include "wire/be_auth.hpp"

namespace wire::be {

Result<Authentication> parse_authentication(const Frame& frame) {
    auto code = detail::peek_code(frame, 'R');
    if (!code) {
        return code.error();
    }
    if (auto request = detail::parse_by_code<Authentication>(frame, *code)) {
        return *request;
    }
    return errc::invalid_value;
}

} // namespace wire::be

#include "wire/result.hpp"

#include <string>

namespace wire {
namespace {

class Category final : public boost::system::error_category {
public:
    constexpr Category() noexcept = default;

    const char* name() const noexcept override { return "wire"; }

    std::string message(int ev) const override { return describe(static_cast<errc>(ev)); }

private:
    static const char* describe(errc e) noexcept {
        switch (e) {
        case errc::truncated:
            return "message truncated";
        case errc::length_too_small:
            return "message length too small";
        case errc::message_too_large:
            return "message length exceeds limit";
        case errc::startup_too_large:
            return "startup packet length exceeds limit";
        case errc::missing_terminator:
            return "missing NUL terminator";
        case errc::trailing_bytes:
            return "trailing bytes after message";
        case errc::unexpected_type:
            return "unexpected message type";
        case errc::invalid_value:
            return "invalid field value";
        case errc::unsupported_protocol:
            return "unsupported frontend protocol";
        case errc::scram_malformed:
            return "malformed SCRAM message";
        case errc::scram_out_of_order:
            return "unexpected SCRAM message";
        case errc::scram_nonce_mismatch:
            return "SCRAM nonce mismatch";
        case errc::scram_bad_iterations:
            return "SCRAM iteration count out of range";
        case errc::scram_channel_binding:
            return "unsupported or mismatched SCRAM channel binding";
        case errc::scram_proof_mismatch:
            return "SCRAM client proof mismatch";
        case errc::scram_signature_mismatch:
            return "SCRAM server signature mismatch";
        case errc::scram_server_error:
            return "SCRAM server reported an error";
        }
        return "unknown wire error";
    }
};

constinit const Category category;

} // namespace

const boost::system::error_category& wire_category() noexcept {
    return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category};
}

} // namespace wire

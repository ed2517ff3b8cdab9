// Every message parser on arbitrary bodies. Input: one type byte ('\0' for a startup-phase
// packet), then the body. Whatever parses must encode back to exactly the bytes it came from:
// the protocol has one encoding per value, so any difference means parse() and encode()
// disagree about the layout.

#include "wire/be_auth.hpp"
#include "wire/be_error.hpp"
#include "wire/be_query.hpp"
#include "wire/be_status.hpp"
#include "wire/copy.hpp"
#include "wire/fe_auth.hpp"
#include "wire/fe_query.hpp"
#include "wire/fe_startup.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

namespace {

using namespace wire;

template <class... Ts>
struct TypeList {};

using Messages = TypeList<
    fe::StartupMessage, fe::SSLRequest, fe::GSSENCRequest, fe::CancelRequest, fe::PasswordMessage,
    fe::SASLInitialResponse, fe::SASLResponse, fe::GSSResponse, fe::Query, fe::Parse, fe::Bind,
    fe::Describe, fe::Close, fe::Execute, fe::Sync, fe::Flush, fe::Terminate, fe::FunctionCall,
    fe::CopyFail, CopyData, CopyDone, be::CopyInResponse, be::CopyOutResponse, be::CopyBothResponse,
    be::AuthenticationOk, be::AuthenticationKerberosV5, be::AuthenticationCleartextPassword,
    be::AuthenticationMD5Password, be::AuthenticationGSS, be::AuthenticationGSSContinue,
    be::AuthenticationSSPI, be::AuthenticationSASL, be::AuthenticationSASLContinue,
    be::AuthenticationSASLFinal, be::BackendKeyData, be::ParameterStatus, be::ReadyForQuery,
    be::NotificationResponse, be::NegotiateProtocolVersion, be::ErrorResponse, be::NoticeResponse,
    be::ParseComplete, be::BindComplete, be::CloseComplete, be::NoData, be::EmptyQueryResponse,
    be::PortalSuspended, be::CommandComplete, be::ParameterDescription, be::RowDescription,
    be::DataRow, be::FunctionCallResponse>;

void check_encodes_to(const auto& message, std::span<const std::byte> raw) {
    Writer w;
    message.encode(w);
    if (!std::ranges::equal(w.bytes(), raw)) {
        std::abort();
    }
}

template <class Message>
void check_round_trip(const Frame& frame) {
    const auto parsed = Message::parse(frame);
    if (parsed) {
        check_encodes_to(*parsed, frame.raw);
    }
}

template <class... Ts>
void check_all(TypeList<Ts...>, const Frame& frame) {
    (check_round_trip<Ts>(frame), ...);
}

template <class Variant>
void check_variant_round_trip(const Result<Variant>& parsed, const Frame& frame) {
    if (parsed) {
        std::visit([&](const auto& message) { check_encodes_to(message, frame.raw); }, *parsed);
    }
}

void use_accessors(const Frame& frame) {
    if (const auto error = be::ErrorResponse::parse(frame)) {
        static_cast<void>(error->severity());
        static_cast<void>(error->code());
        static_cast<void>(error->message());
    }
    if (const auto startup = fe::StartupMessage::parse(frame)) {
        static_cast<void>(startup->parameter("user"));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const char type = static_cast<char>(data[0]);
    const auto body = std::as_bytes(std::span(data + 1, size - 1));

    Writer framed;
    if (type == '\0') {
        framed.begin_untyped();
    } else {
        framed.begin(type);
    }
    framed.put_bytes(body).end();
    const auto raw = framed.bytes();
    const Frame frame{type, raw.subspan(raw.size() - body.size()), raw};

    check_all(Messages(), frame);
    check_variant_round_trip(fe::parse_startup_packet(frame), frame);
    check_variant_round_trip(be::parse_authentication(frame), frame);
    use_accessors(frame);
    return 0;
}

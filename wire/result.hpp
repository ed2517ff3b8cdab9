#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <type_traits>

namespace wire {

// Why a frame or message was rejected. Every value means the peer sent something that is not
// valid v3 protocol (or that exceeds our limits); none of them is a local failure.
enum class errc {
    truncated = 1,        // a field runs past the end of its frame
    length_too_small,     // length word below the protocol minimum (4 typed, 8 startup)
    message_too_large,    // typed length word above Limits::max_message_size
    startup_too_large,    // startup length word above Limits::max_startup_packet
    missing_terminator,   // a String or a NUL-terminated list has no NUL
    trailing_bytes,       // the frame holds bytes after the last field
    unexpected_type,      // the frame is not of the message type asked for
    invalid_value,        // a field holds a value the protocol does not define
    unsupported_protocol, // a startup packet asks for a protocol major version other than 3
    // SCRAM-SHA-256 (wire/scram.hpp): the peer's SASL messages, RFC 5802 section 7.
    scram_malformed,          // a SCRAM message or stored verifier does not follow its grammar
    scram_out_of_order,       // a SCRAM message arrived when the exchange expects another
    scram_nonce_mismatch,     // the nonce does not extend the one this side sent
    scram_bad_iterations,     // iteration count outside 1..scram::max_iterations
    scram_channel_binding,    // channel binding requested (p=) or not the one announced
    scram_proof_mismatch,     // the client's proof is wrong: wrong password
    scram_signature_mismatch, // the server's signature is wrong: it does not know the password
    scram_server_error,       // the server-final-message is e=<server-error-value>
};

[[nodiscard]] const boost::system::error_category& wire_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(errc e) noexcept;

template <class T>
using Result = boost::system::result<T>;

} // namespace wire

template <>
struct boost::system::is_error_code_enum<wire::errc> : std::true_type {};

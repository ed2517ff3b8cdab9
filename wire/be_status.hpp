#pragma once

// Backend messages about the session rather than a query: the cancel key, run-time parameter
// reports, transaction status, notifications and protocol negotiation (protocol docs,
// "Start-up" and "Asynchronous Operations").

#include "wire/message.hpp"

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace wire::be {

// The key a client later sends in a CancelRequest.
struct BackendKeyData {
    static constexpr char type = 'K';
    std::int32_t process_id = 0;
    std::span<const std::byte> secret_key; // 4 bytes in 3.0; up to 256 in 3.2 (the server uses 32)

    static auto layout(auto& m) {
        return detail::layout(m.process_id, detail::SecretKey{m.secret_key});
    }
    [[nodiscard]] static Result<BackendKeyData> parse(const Frame& frame) {
        return detail::parse<BackendKeyData>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// Sent at start-up for every reported setting and again whenever one changes, at any time.
struct ParameterStatus {
    static constexpr char type = 'S';
    std::string_view name;
    std::string_view value;

    static auto layout(auto& m) { return detail::layout(m.name, m.value); }
    [[nodiscard]] static Result<ParameterStatus> parse(const Frame& frame) {
        return detail::parse<ParameterStatus>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

enum class TransactionStatus : char {
    idle = 'I',           // not in a transaction block: the server can be released
    in_transaction = 'T', // in a transaction block
    failed = 'E',         // in a failed transaction block; queries are refused until it ends
};

[[nodiscard]] constexpr bool is_valid(TransactionStatus s) noexcept {
    return s == TransactionStatus::idle || s == TransactionStatus::in_transaction ||
           s == TransactionStatus::failed;
}

struct ReadyForQuery {
    static constexpr char type = 'Z';
    TransactionStatus status = TransactionStatus::idle;

    [[nodiscard]] static constexpr ReadyForQuery idle() noexcept {
        return {TransactionStatus::idle};
    }
    [[nodiscard]] static constexpr ReadyForQuery in_transaction() noexcept {
        return {TransactionStatus::in_transaction};
    }
    [[nodiscard]] static constexpr ReadyForQuery failed() noexcept {
        return {TransactionStatus::failed};
    }

    static auto layout(auto& m) { return detail::layout(m.status); }
    [[nodiscard]] static Result<ReadyForQuery> parse(const Frame& frame) {
        return detail::parse<ReadyForQuery>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// A NOTIFY delivered to a session that LISTENs; may arrive between any two messages.
struct NotificationResponse {
    static constexpr char type = 'A';
    std::int32_t process_id = 0; // of the notifying backend
    std::string_view channel;
    std::string_view payload;

    static auto layout(auto& m) { return detail::layout(m.process_id, m.channel, m.payload); }
    [[nodiscard]] static Result<NotificationResponse> parse(const Frame& frame) {
        return detail::parse<NotificationResponse>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

// The answer to a StartupMessage asking for a newer minor version than the server speaks, or
// for `_pq_.` options it does not know; sent at most once, before authentication.
struct NegotiateProtocolVersion {
    static constexpr char type = 'v';
    std::int32_t newest_minor_version = 0;
    std::vector<std::string_view> unrecognized_options;

    static auto layout(auto& m) {
        return detail::layout(m.newest_minor_version, detail::Int32Counted{m.unrecognized_options});
    }
    [[nodiscard]] static Result<NegotiateProtocolVersion> parse(const Frame& frame) {
        return detail::parse<NegotiateProtocolVersion>(frame);
    }
    void encode(Writer& w) const { detail::encode(w, *this); }
};

} // namespace wire::be

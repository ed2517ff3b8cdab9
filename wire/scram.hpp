#pragma once

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it (PostgreSQL docs, "SASL
// Authentication"): two pure state machines, messages in and messages out. The caller carries
// the messages in SASLInitialResponse / SASLResponse and AuthenticationSASLContinue /
// AuthenticationSASLFinal.
//
// What PostgreSQL does differently from plain RFC 5802, and so do we:
// - the username in client-first-message is ignored (the StartupMessage named the user), so
//   the client sends "n=" empty;
// - no authzid ("a="): PostgreSQL refuses it;
// - channel binding ("p=", SCRAM-SHA-256-PLUS) is not offered here, so "p=" is refused.
//
// Password normalization. RFC 5802 section 2.2 asks for SASLprep (RFC 4013); PostgreSQL
// applies it and falls back to the raw bytes when the password is not valid UTF-8 or SASLprep
// rejects it (src/common/saslprep.c, pg_saslprep() callers). We always use the raw bytes:
// - for ASCII this is exactly PostgreSQL's result: SASLprep maps no ASCII character (tables
//   B.1 and C.1.2 hold none), NFKC leaves ASCII unchanged, and the only prohibited ASCII
//   characters are the controls U+0000..U+001F and U+007F (table C.2.1), for which SASLprep
//   fails and PostgreSQL falls back to the raw bytes too;
// - for non-ASCII we do not implement NFKC and the RFC 3454 tables, so the result matches
//   PostgreSQL whenever SASLprep would leave the password unchanged (already NFKC-normalized,
//   no non-ASCII space and no "mapped to nothing" character) or reject it.
//
// Neither class throws on peer input: every handle_* returns an errc, and after an error the
// exchange is finished and further messages get errc::scram_out_of_order.
// Thread safety: none; an exchange belongs to one connection.

#include "wire/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wire::scram {

inline constexpr std::string_view mechanism = "SCRAM-SHA-256";

// The size of a SHA-256 digest, hence of every key, proof and signature (RFC 7677).
inline constexpr std::size_t key_size = 32;
using Key = std::array<std::byte, key_size>;

// The server's iteration count is work the client must do: refuse counts that would stall a
// worker. PostgreSQL's default is 4096 (scram_iterations); 10 million takes seconds.
inline constexpr std::uint32_t max_iterations = 10'000'000;
// What PostgreSQL uses for a new verifier (SCRAM_SHA_256_DEFAULT_ITERATIONS, salt length
// SCRAM_DEFAULT_SALT_LEN).
inline constexpr std::uint32_t default_iterations = 4096;
inline constexpr std::size_t default_salt_size = 16;

// What a server stores instead of the password (RFC 5802 section 3), in PostgreSQL's pg_authid
// text form: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, all base64.
struct Verifier {
    std::uint32_t iterations = default_iterations;
    std::vector<std::byte> salt;
    Key stored_key{};
    Key server_key{};

    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const Verifier&, const Verifier&) = default;
};

// errc::scram_malformed unless `text` is a verifier in PostgreSQL's form with an iteration
// count in 1..INT32_MAX (PostgreSQL's own range for scram_iterations).
[[nodiscard]] Result<Verifier> parse_verifier(std::string_view text);

// Throws std::invalid_argument for zero iterations or an empty salt, std::runtime_error if
// OpenSSL fails.
[[nodiscard]] Verifier make_verifier(std::string_view password, std::span<const std::byte> salt,
                                     std::uint32_t iterations = default_iterations);

// 18 random bytes in base64 (PostgreSQL's SCRAM_RAW_NONCE_LEN): printable, no ','.
// Throws std::runtime_error if OpenSSL has no randomness.
[[nodiscard]] std::string random_nonce();

// pgmarina logging in to PostgreSQL.
class ClientExchange {
public:
    // Throws std::invalid_argument if `nonce` is empty or holds a character outside RFC 5802's
    // "printable" (0x21..0x7e except ','). Tests pass a fixed nonce; everyone else the default.
    explicit ClientExchange(std::string_view password, std::string nonce = random_nonce());
    // Without the password: a ClientKey and ServerKey recovered by a ServerExchange are enough
    // to compute the proof and check the server (SCRAM pass-through). The server must use the
    // same salt and iteration count as the verifier the keys were checked against.
    ClientExchange(const Key& client_key, const Key& server_key,
                   std::string nonce = random_nonce());

    // "n,,n=,r=<nonce>": no channel binding, empty username.
    [[nodiscard]] const std::string& client_first_message() const noexcept { return first_; }
    // Takes the server-first-message, returns the client-final-message.
    [[nodiscard]] Result<std::string> handle_server_first(std::string_view message);
    // Takes the server-final-message; success means the server proved it knows the verifier.
    [[nodiscard]] Result<void> handle_server_final(std::string_view message);

    // The server-final-message has been verified.
    [[nodiscard]] bool authenticated() const noexcept { return state_ == State::authenticated; }

private:
    // Each message moves the exchange one state on; any error moves it to `failed`.
    enum class State { awaiting_server_first, awaiting_server_final, authenticated, failed };

    ClientExchange(std::optional<std::string> password, std::optional<Key> client_key,
                   std::optional<Key> server_key, std::string nonce);
    Result<std::string> server_first(std::string_view message);
    Result<void> server_final(std::string_view message);

    State state_ = State::awaiting_server_first;
    std::optional<std::string> password_; // empty when constructed from keys
    Key client_key_{};                    // from the keys, or once the salt arrives
    Key server_key_{};
    std::string nonce_;
    std::string first_;
    Key expected_signature_{}; // ServerSignature, known once the client-final is built
};

// pgmarina checking a client.
class ServerExchange {
public:
    // Throws std::invalid_argument for a nonce as ClientExchange does.
    explicit ServerExchange(Verifier verifier, std::string nonce = random_nonce());
    // A verifier derived on the spot with a random salt and default_iterations.
    [[nodiscard]] static ServerExchange from_password(std::string_view password);

    // Takes the client-first-message, returns the server-first-message.
    [[nodiscard]] Result<std::string> handle_client_first(std::string_view message);
    // Takes the client-final-message, returns the server-final-message. errc::scram_proof_mismatch
    // for a wrong password: PostgreSQL answers that with ErrorResponse 28P01, not with "e=".
    [[nodiscard]] Result<std::string> handle_client_final(std::string_view message);

    [[nodiscard]] bool authenticated() const noexcept { return client_key_.has_value(); }
    // The ClientKey the proof revealed (RFC 5802 section 9: whoever sees the proof and knows
    // StoredKey can recover it); set once authenticated, used for pass-through to PostgreSQL.
    [[nodiscard]] const std::optional<Key>& client_key() const noexcept { return client_key_; }
    [[nodiscard]] const Verifier& verifier() const noexcept { return verifier_; }

private:
    enum class State { awaiting_client_first, awaiting_client_final, done, failed };

    Result<std::string> client_first(std::string_view message);
    Result<std::string> client_final(std::string_view message);

    State state_ = State::awaiting_client_first;
    Verifier verifier_;
    std::string nonce_;      // ours, then the client's followed by ours
    std::string gs2_header_; // "n,," or "y,,", echoed base64-encoded in c=
    std::string client_first_bare_;
    std::string server_first_;
    std::optional<Key> client_key_;
};

} // namespace wire::scram

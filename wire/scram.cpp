#include "wire/scram.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

namespace wire::scram {
namespace {

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 4648 section 4, with padding, as RFC 5802 section 7 requires.
std::string base64_encode(std::span<const std::byte> data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < data.size(); i += 3) {
        const std::size_t n = std::min<std::size_t>(3, data.size() - i);
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 3; ++k) {
            group = (group << 8) | (k < n ? std::to_integer<std::uint32_t>(data[i + k]) : 0);
        }
        for (std::size_t k = 0; k < 4; ++k) {
            out += k <= n ? base64_alphabet[(group >> (18 - 6 * k)) & 0x3f] : '=';
        }
    }
    return out;
}

// Strict (RFC 4648 section 3.5 "canonical encoding"): length a multiple of 4, '=' only as the
// final one or two characters, the bits the padding leaves over zero, nothing outside the
// alphabet (no whitespace). Every conforming encoder produces exactly this, and it gives each
// proof, salt and key a single spelling.
Result<std::vector<std::byte>> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return errc::scram_malformed;
    }
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') {
        padding = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    }
    std::vector<std::byte> out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            std::uint32_t sextet = 0;
            if (last && k >= 4 - padding) {
                sextet = 0;
            } else {
                const auto pos = base64_alphabet.find(text[i + k]);
                if (pos == std::string_view::npos) {
                    return errc::scram_malformed;
                }
                sextet = static_cast<std::uint32_t>(pos);
            }
            group = (group << 6) | sextet;
        }
        if (last && padding > 0 && (group & ((1U << (8 * padding)) - 1)) != 0) {
            return errc::scram_malformed;
        }
        const std::size_t n = last ? 3 - padding : 3;
        for (std::size_t k = 0; k < n; ++k) {
            out.push_back(static_cast<std::byte>((group >> (16 - 8 * k)) & 0xff));
        }
    }
    return out;
}

Result<Key> decode_key(std::string_view text) {
    auto bytes = base64_decode(text);
    if (!bytes || bytes->size() != key_size) {
        return errc::scram_malformed;
    }
    Key key;
    std::ranges::copy(*bytes, key.begin());
    return key;
}

std::span<const std::byte> bytes_of(std::string_view s) noexcept {
    return std::as_bytes(std::span(s));
}

const unsigned char* uchars(std::span<const std::byte> b) noexcept {
    return reinterpret_cast<const unsigned char*>(b.data());
}

// Hi() of RFC 5802 section 2.2 is PBKDF2 with HMAC as the PRF and one block of output.
Key salted_password(std::string_view password, std::span<const std::byte> salt,
                    std::uint32_t iterations) {
    Key out;
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), uchars(salt),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                          static_cast<int>(out.size()),
                          reinterpret_cast<unsigned char*>(out.data())) != 1) {
        throw std::runtime_error("scram: PKCS5_PBKDF2_HMAC failed");
    }
    return out;
}

Key hmac(const Key& key, std::string_view data) {
    Key out;
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), uchars(bytes_of(data)),
             data.size(), reinterpret_cast<unsigned char*>(out.data()), &size) == nullptr ||
        size != out.size()) {
        throw std::runtime_error("scram: HMAC failed");
    }
    return out;
}

Key sha256(const Key& data) {
    Key out;
    unsigned int size = 0;
    if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &size,
                   EVP_sha256(), nullptr) != 1 ||
        size != out.size()) {
        throw std::runtime_error("scram: SHA-256 failed");
    }
    return out;
}

Key xor_keys(const Key& a, const Key& b) noexcept {
    Key out;
    for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = a[i] ^ b[i];
    }
    return out;
}

// Proofs and signatures are compared in constant time, so timing tells an attacker nothing
// about how many leading bytes were right.
bool same_key(const Key& a, const Key& b) noexcept {
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 5802 section 3: the two keys derived from SaltedPassword.
Key client_key_of(const Key& salted) {
    return hmac(salted, "Client Key");
}
Key server_key_of(const Key& salted) {
    return hmac(salted, "Server Key");
}

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E, i.e. visible ASCII except ','.
bool is_printable(std::string_view s) noexcept {
    return !s.empty() &&
           std::ranges::all_of(s, [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

std::string checked_nonce(std::string nonce) {
    if (!is_printable(nonce)) {
        throw std::invalid_argument("scram: a nonce must be non-empty printable ASCII without ','");
    }
    return nonce;
}

Result<std::uint32_t> parse_count(std::string_view text, std::uint32_t max) {
    std::uint32_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
        !std::ranges::all_of(text, [](char c) { return c >= '0' && c <= '9'; }) || value == 0 ||
        value > max) {
        return errc::scram_bad_iterations;
    }
    return value;
}

// Reads a message as RFC 5802 section 7's comma-separated "attr=value" list, one attribute at
// a time and in the order the grammar fixes.
class Attributes {
public:
    explicit Attributes(std::string_view message) noexcept : rest_(message) {}

    // The next attribute's name, without consuming it; '\0' at the end.
    [[nodiscard]] char peek() const noexcept {
        return done() || rest_.empty() ? '\0' : rest_.front();
    }

    // The value of the next attribute, which must be called `name`.
    [[nodiscard]] Result<std::string_view> take(char name) noexcept {
        if (done() || rest_.size() < 2 || rest_[0] != name || rest_[1] != '=') {
            return errc::scram_malformed;
        }
        return take_value();
    }

    // Skips the optional extensions a message may end with.
    [[nodiscard]] Result<void> skip_extensions() noexcept {
        while (!done()) {
            if (auto value = take_any(); !value) {
                return value.error();
            }
        }
        return {};
    }

    [[nodiscard]] bool done() const noexcept { return finished_; }

private:
    // Any attribute (an extension, RFC 5802 section 7 "attr-val"): a letter, '=', a value.
    [[nodiscard]] Result<std::string_view> take_any() noexcept {
        if (done() || rest_.size() < 2 || !is_alpha(rest_[0]) || rest_[1] != '=') {
            return errc::scram_malformed;
        }
        return take_value();
    }

    static bool is_alpha(char c) noexcept {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    std::string_view take_value() noexcept {
        const auto comma = rest_.find(',');
        const std::string_view value =
            rest_.substr(2, comma == std::string_view::npos ? std::string_view::npos : comma - 2);
        if (comma == std::string_view::npos) {
            rest_ = {};
            finished_ = true;
        } else {
            rest_.remove_prefix(comma + 1);
        }
        return value;
    }

    std::string_view rest_;
    bool finished_ = false;
};

} // namespace

std::string Verifier::to_string() const {
    return std::string(mechanism) + "$" + std::to_string(iterations) + ":" + base64_encode(salt) +
           "$" + base64_encode(stored_key) + ":" + base64_encode(server_key);
}

Result<Verifier> parse_verifier(std::string_view text) {
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (PostgreSQL docs, pg_authid).
    const auto prefix = std::string(mechanism) + "$";
    if (!text.starts_with(prefix)) {
        return errc::scram_malformed;
    }
    text.remove_prefix(prefix.size());
    const auto dollar = text.find('$');
    if (dollar == std::string_view::npos) {
        return errc::scram_malformed;
    }
    const std::string_view params = text.substr(0, dollar);
    const std::string_view keys = text.substr(dollar + 1);
    const auto colon1 = params.find(':');
    const auto colon2 = keys.find(':');
    if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) {
        return errc::scram_malformed;
    }
    Verifier v;
    const auto iterations =
        parse_count(params.substr(0, colon1), std::numeric_limits<std::int32_t>::max());
    auto salt = base64_decode(params.substr(colon1 + 1));
    const auto stored = decode_key(keys.substr(0, colon2));
    const auto server = decode_key(keys.substr(colon2 + 1));
    if (!iterations || !salt || salt->empty() || !stored || !server) {
        return errc::scram_malformed;
    }
    v.iterations = *iterations;
    v.salt = std::move(*salt);
    v.stored_key = *stored;
    v.server_key = *server;
    return v;
}

Verifier make_verifier(std::string_view password, std::span<const std::byte> salt,
                       std::uint32_t iterations) {
    if (iterations == 0 || iterations > std::numeric_limits<std::int32_t>::max() || salt.empty()) {
        throw std::invalid_argument("scram: a verifier needs a salt and 1..INT32_MAX iterations");
    }
    const Key salted = salted_password(password, salt, iterations);
    return Verifier{.iterations = iterations,
                    .salt = {salt.begin(), salt.end()},
                    .stored_key = sha256(client_key_of(salted)),
                    .server_key = server_key_of(salted)};
}

std::string random_nonce() {
    std::array<std::byte, 18> raw{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) !=
        1) {
        throw std::runtime_error("scram: RAND_bytes failed");
    }
    return base64_encode(raw);
}

// ClientExchange

ClientExchange::ClientExchange(std::string_view password, std::string nonce)
    : ClientExchange(std::string(password), std::nullopt, std::nullopt, std::move(nonce)) {}

ClientExchange::ClientExchange(const Key& client_key, const Key& server_key, std::string nonce)
    : ClientExchange(std::nullopt, client_key, server_key, std::move(nonce)) {}

ClientExchange::ClientExchange(std::optional<std::string> password, std::optional<Key> client_key,
                               std::optional<Key> server_key, std::string nonce)
    : password_(std::move(password)), client_key_(client_key.value_or(Key{})),
      server_key_(server_key.value_or(Key{})), nonce_(checked_nonce(std::move(nonce))),
      first_("n,,n=,r=" + nonce_) {}

Result<std::string> ClientExchange::handle_server_first(std::string_view message) {
    if (state_ != State::awaiting_server_first) {
        state_ = State::failed;
        return errc::scram_out_of_order;
    }
    auto result = server_first(message);
    state_ = result ? State::awaiting_server_final : State::failed;
    return result;
}

Result<std::string> ClientExchange::server_first(std::string_view message) {
    // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
    //                        ["," extensions]                       (RFC 5802 section 7)
    // A mandatory extension ("m=") we do not know must fail the exchange, so "m=" is malformed.
    Attributes attrs(message);
    const auto nonce = attrs.take('r');
    if (!nonce || !is_printable(*nonce)) {
        return errc::scram_malformed;
    }
    // The server appends its own part to ours (RFC 5802 section 5.1); an empty part would let
    // the server replay a whole earlier exchange.
    if (nonce->size() <= nonce_.size() || !nonce->starts_with(nonce_)) {
        return errc::scram_nonce_mismatch;
    }
    const auto salt_text = attrs.take('s');
    if (!salt_text) {
        return salt_text.error();
    }
    const auto salt = base64_decode(*salt_text);
    if (!salt || salt->empty()) {
        return errc::scram_malformed;
    }
    const auto count_text = attrs.take('i');
    if (!count_text) {
        return count_text.error();
    }
    const auto iterations = parse_count(*count_text, max_iterations);
    if (!iterations) {
        return iterations.error();
    }
    if (auto ext = attrs.skip_extensions(); !ext) {
        return ext.error();
    }

    if (password_) {
        const Key salted = salted_password(*password_, *salt, *iterations);
        client_key_ = client_key_of(salted);
        server_key_ = server_key_of(salted);
    }
    // "biws" is base64("n,,"): the GS2 header we sent, no channel binding (RFC 5802 section 6).
    std::string final_message = "c=biws,r=" + std::string(*nonce);
    // AuthMessage (RFC 5802 section 3) starts with client-first-message-bare: ours without
    // the "n,," GS2 header.
    const std::string auth_message =
        first_.substr(3) + "," + std::string(message) + "," + final_message;
    const Key client_signature = hmac(sha256(client_key_), auth_message);
    expected_signature_ = hmac(server_key_, auth_message);
    final_message += ",p=" + base64_encode(xor_keys(client_key_, client_signature));
    return final_message;
}

Result<void> ClientExchange::handle_server_final(std::string_view message) {
    if (state_ != State::awaiting_server_final) {
        state_ = State::failed;
        return errc::scram_out_of_order;
    }
    auto result = server_final(message);
    state_ = result ? State::authenticated : State::failed;
    return result;
}

Result<void> ClientExchange::server_final(std::string_view message) {
    // server-final-message = (server-error / verifier) ["," extensions]  (RFC 5802 section 7)
    Attributes attrs(message);
    if (attrs.peek() == 'e') {
        return attrs.take('e') ? errc::scram_server_error : errc::scram_malformed;
    }
    const auto signature_text = attrs.take('v');
    if (!signature_text) {
        return signature_text.error();
    }
    const auto signature = decode_key(*signature_text);
    if (!signature) {
        return signature.error();
    }
    if (auto ext = attrs.skip_extensions(); !ext) {
        return ext.error();
    }
    if (!same_key(*signature, expected_signature_)) {
        return errc::scram_signature_mismatch;
    }
    return {};
}

// ServerExchange

ServerExchange::ServerExchange(Verifier verifier, std::string nonce)
    : verifier_(std::move(verifier)), nonce_(checked_nonce(std::move(nonce))) {}

ServerExchange ServerExchange::from_password(std::string_view password) {
    std::array<std::byte, default_salt_size> salt{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
        1) {
        throw std::runtime_error("scram: RAND_bytes failed");
    }
    return ServerExchange(make_verifier(password, salt, default_iterations));
}

Result<std::string> ServerExchange::handle_client_first(std::string_view message) {
    if (state_ != State::awaiting_client_first) {
        state_ = State::failed;
        return errc::scram_out_of_order;
    }
    auto result = client_first(message);
    state_ = result ? State::awaiting_client_final : State::failed;
    return result;
}

Result<std::string> ServerExchange::client_first(std::string_view message) {
    // client-first-message = gs2-header client-first-message-bare
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    // gs2-cbind-flag = ("p=" cb-name) / "n" / "y"                      (RFC 5802 section 7)
    // "y" means the client could bind but believes we cannot, which is true: we offer no
    // SCRAM-SHA-256-PLUS (so, unlike PostgreSQL over TLS, we need not refuse it).
    if (message.starts_with("p=")) {
        return errc::scram_channel_binding;
    }
    if (!message.starts_with("n,") && !message.starts_with("y,")) {
        return errc::scram_malformed;
    }
    // PostgreSQL refuses an authzid ("a="), so the header must end right here.
    if (message.size() < 3 || message[2] != ',') {
        return errc::scram_malformed;
    }
    const std::string_view bare = message.substr(3);
    Attributes attrs(bare);
    // The username is ignored (the StartupMessage named the user), but must be there.
    if (auto user = attrs.take('n'); !user) {
        return user.error();
    }
    const auto client_nonce = attrs.take('r');
    if (!client_nonce || !is_printable(*client_nonce)) {
        return errc::scram_malformed;
    }
    if (auto ext = attrs.skip_extensions(); !ext) {
        return ext.error();
    }
    gs2_header_ = std::string(message.substr(0, 3));
    client_first_bare_ = std::string(bare);
    nonce_ = std::string(*client_nonce) + nonce_;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(verifier_.salt) +
                    ",i=" + std::to_string(verifier_.iterations);
    return server_first_;
}

Result<std::string> ServerExchange::handle_client_final(std::string_view message) {
    if (state_ != State::awaiting_client_final) {
        state_ = State::failed;
        return errc::scram_out_of_order;
    }
    auto result = client_final(message);
    state_ = result ? State::done : State::failed;
    return result;
}

Result<std::string> ServerExchange::client_final(std::string_view message) {
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    // (RFC 5802 section 7). The proof is last and its base64 holds no ',', so it starts after
    // the last ",p=", and the AuthMessage takes everything before that.
    const auto proof_at = message.rfind(",p=");
    if (proof_at == std::string_view::npos) {
        return errc::scram_malformed;
    }
    const std::string_view without_proof = message.substr(0, proof_at);
    const auto proof = decode_key(message.substr(proof_at + 3));
    if (!proof) {
        return proof.error();
    }
    Attributes attrs(without_proof);
    const auto binding_text = attrs.take('c');
    if (!binding_text) {
        return binding_text.error();
    }
    const auto binding = base64_decode(*binding_text);
    if (!binding) {
        return binding.error();
    }
    // c= repeats the GS2 header of client-first-message (RFC 5802 section 6); anything else
    // would be a client changing its mind about channel binding after the fact.
    if (!std::ranges::equal(*binding, bytes_of(gs2_header_))) {
        return errc::scram_channel_binding;
    }
    const auto nonce = attrs.take('r');
    if (!nonce) {
        return nonce.error();
    }
    if (*nonce != nonce_) {
        return errc::scram_nonce_mismatch;
    }
    if (auto ext = attrs.skip_extensions(); !ext) {
        return ext.error();
    }

    // RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), and the
    // proof is right when H(ClientKey) is StoredKey.
    const std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    const Key client_key = xor_keys(*proof, hmac(verifier_.stored_key, auth_message));
    if (!same_key(sha256(client_key), verifier_.stored_key)) {
        return errc::scram_proof_mismatch;
    }
    client_key_ = client_key;
    return "v=" + base64_encode(hmac(verifier_.server_key, auth_message));
}

} // namespace wire::scram

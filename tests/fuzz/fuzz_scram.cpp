// SCRAM-SHA-256 (wire/scram.cpp) on arbitrary messages, both sides: the ServerExchange pgmarina
// runs against a client (client-first-message, client-final-message, as SASLInitialResponse and
// SASLResponse carry them) and the ClientExchange it runs against PostgreSQL (server-first-
// message, server-final-message), plus the pg_authid verifier parser.
//
// Input: a control byte (even: server side, odd: client side), then the first message, '\n',
// and the second message. The nonces and the password ("pencil") are fixed, so that the seeds
// in corpus/fuzz_scram, real exchanges, lead the fuzzer past the nonce and proof checks. The
// client side is built from keys, as for SCRAM pass-through: no PBKDF2 runs per input, whatever
// iteration count the input names.
//
// Checked: nothing crashes or throws; a step that succeeds answers in the RFC 5802 form; a failed
// exchange stays failed; only a correct proof authenticates; and a verifier that parses prints
// back to text that parses to the same verifier.

#include "wire/scram.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace wire::scram;

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

constexpr std::string_view password = "pencil";
constexpr std::string_view server_nonce = "fuzzServerNonce";
constexpr std::string_view client_nonce = "fuzzClientNonce";

// The verifier, and the keys a real exchange with the password recovers from it.
struct Secrets {
    Verifier verifier;
    Key client_key{};
};

const Secrets& secrets() {
    static const Secrets s = [] {
        const std::string salt_text = "fuzz-salt-16byte";
        const auto* salt = reinterpret_cast<const std::byte*>(salt_text.data());
        Secrets result;
        result.verifier = make_verifier(password, {salt, salt_text.size()}, default_iterations);
        ServerExchange server(result.verifier, std::string(server_nonce));
        ClientExchange client(password, std::string(client_nonce));
        auto first = server.handle_client_first(client.client_first_message());
        auto final_message = client.handle_server_first(first.value());
        auto outcome = server.handle_client_final(final_message.value());
        require(client.handle_server_final(outcome.value()).has_value());
        result.client_key = server.client_key().value();
        return result;
    }();
    return s;
}

void server_side(std::string_view first, std::string_view second) {
    ServerExchange server(secrets().verifier, std::string(server_nonce));
    auto server_first = server.handle_client_first(first);
    if (!server_first) {
        require(!server.handle_client_final(second));
        require(!server.authenticated());
        return;
    }
    require(server_first->starts_with("r="));
    require(server_first->find(server_nonce) != std::string::npos);
    require(server_first->ends_with(",i=" + std::to_string(default_iterations)));
    auto server_final = server.handle_client_final(second);
    require(server_final.has_value() == server.authenticated());
    if (server_final) {
        require(server_final->starts_with("v="));
        require(server.client_key() == secrets().client_key);
    }
    require(!server.handle_client_final(second)); // an exchange takes each message once
}

void client_side(std::string_view first, std::string_view second) {
    ClientExchange client(secrets().client_key, secrets().verifier.server_key,
                          std::string(client_nonce));
    require(client.client_first_message() == "n,,n=,r=" + std::string(client_nonce));
    auto client_final = client.handle_server_first(first);
    if (!client_final) {
        require(!client.handle_server_final(second));
        require(!client.authenticated());
        return;
    }
    require(client_final->starts_with("c=biws,r=" + std::string(client_nonce)));
    require(client_final->find(",p=") != std::string::npos);
    auto done = client.handle_server_final(second);
    require(done.has_value() == client.authenticated());
    require(!client.handle_server_final(second));
}

void verifier_text(std::string_view text) {
    auto verifier = parse_verifier(text);
    if (!verifier) return;
    require(verifier->iterations >= 1 && !verifier->salt.empty());
    auto again = parse_verifier(verifier->to_string());
    require(again.has_value() && *again == *verifier);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto split = input.find('\n');
    const std::string_view first = input.substr(0, split);
    const std::string_view second =
        split == std::string_view::npos ? std::string_view{} : input.substr(split + 1);
    if (data[0] % 2 == 0) {
        server_side(first, second);
    } else {
        client_side(first, second);
    }
    verifier_text(input);
    return 0;
}

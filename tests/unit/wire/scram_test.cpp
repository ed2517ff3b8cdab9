#include "wire/scram.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using wire::errc;
using namespace wire::scram;

// RFC 7677 section 3, the SCRAM-SHA-256 test vector: user "user", password "pencil".
constexpr std::string_view rfc_client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// The same exchange with PostgreSQL's empty username ("n=,"), which changes the AuthMessage;
// proof and signature computed independently with Python's hashlib/hmac.
constexpr std::string_view pg_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
constexpr std::string_view pg_server_final = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";
// The pencil verifier in pg_authid's form (keys computed with Python as well).
constexpr std::string_view pencil_verifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
constexpr std::string_view pencil_client_key = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";

Verifier pencil() {
    const auto v = parse_verifier(pencil_verifier);
    REQUIRE(v.has_value());
    return *v;
}

Key key_of(std::string_view base64) {
    const auto v = parse_verifier(std::string("SCRAM-SHA-256$1:AA==$") + std::string(base64) + ":" +
                                  std::string(base64));
    REQUIRE(v.has_value());
    return v->stored_key;
}

ServerExchange rfc_server() {
    return ServerExchange(pencil(), std::string(rfc_server_nonce));
}

ClientExchange rfc_client() {
    return ClientExchange("pencil", std::string(rfc_client_nonce));
}

// A client and a server taken through a whole exchange; true when both accept.
bool converse(ClientExchange& client, ServerExchange& server) {
    const auto server_first = server.handle_client_first(client.client_first_message());
    REQUIRE(server_first);
    const auto client_final = client.handle_server_first(*server_first);
    REQUIRE(client_final);
    const auto server_final = server.handle_client_final(*client_final);
    if (!server_final) {
        return false;
    }
    return client.handle_server_final(*server_final).has_value() && client.authenticated() &&
           server.authenticated();
}

// The server after a valid client-first-message of the RFC exchange.
ServerExchange rfc_server_after_first() {
    ServerExchange server = rfc_server();
    REQUIRE(server.handle_client_first(rfc_client_first));
    return server;
}

ClientExchange pg_client_after_first() {
    ClientExchange client = rfc_client();
    REQUIRE(client.handle_server_first(rfc_server_first));
    return client;
}

} // namespace

TEST_SUITE("wire.scram") {
    TEST_CASE("the server side reproduces RFC 7677's exchange byte for byte") {
        ServerExchange server = rfc_server();
        const auto server_first = server.handle_client_first(rfc_client_first);
        REQUIRE(server_first);
        CHECK(*server_first == rfc_server_first);
        CHECK_FALSE(server.authenticated());

        const auto server_final = server.handle_client_final(rfc_client_final);
        REQUIRE(server_final);
        CHECK(*server_final == rfc_server_final);
        CHECK(server.authenticated());
        REQUIRE(server.client_key());
        CHECK(*server.client_key() == key_of(pencil_client_key));
    }

    TEST_CASE("the client side computes the RFC 7677 keys, with PostgreSQL's empty username") {
        ClientExchange client = rfc_client();
        CHECK(client.client_first_message() == "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
        const auto client_final = client.handle_server_first(rfc_server_first);
        REQUIRE(client_final);
        CHECK(*client_final == pg_client_final);
        CHECK_FALSE(client.authenticated());
        CHECK(client.handle_server_final(pg_server_final));
        CHECK(client.authenticated());
    }

    TEST_CASE("a client built from ClientKey and ServerKey sends the same proof") {
        const Verifier v = pencil();
        ClientExchange client(key_of(pencil_client_key), v.server_key,
                              std::string(rfc_client_nonce));
        const auto client_final = client.handle_server_first(rfc_server_first);
        REQUIRE(client_final);
        CHECK(*client_final == pg_client_final);
        CHECK(client.handle_server_final(pg_server_final));
        CHECK(client.authenticated());
    }

    TEST_CASE("verifiers in PostgreSQL's form") {
        const std::vector<std::byte> salt = [] {
            const auto v = parse_verifier(pencil_verifier);
            REQUIRE(v.has_value());
            return v->salt;
        }();
        CHECK(salt.size() == 16);
        const Verifier made = make_verifier("pencil", salt, 4096);
        CHECK(made == pencil());
        CHECK(made.to_string() == pencil_verifier);
        CHECK(make_verifier("pencil", salt, 4095) != made);
        CHECK(make_verifier("pencil!", salt, 4096) != made);
        CHECK_THROWS_AS((void)make_verifier("pencil", salt, 0), std::invalid_argument);
        CHECK_THROWS_AS((void)make_verifier("pencil", {}, 4096), std::invalid_argument);

        SUBCASE("salts of every length round-trip through base64") {
            for (std::size_t n = 1; n <= 7; ++n) {
                const std::vector<std::byte> s(n, std::byte{0xfb});
                const Verifier v = make_verifier("x", s, 1);
                const auto parsed = parse_verifier(v.to_string());
                REQUIRE(parsed.has_value());
                CHECK(*parsed == v);
            }
        }

        SUBCASE("malformed verifiers are rejected") {
            const std::string good(pencil_verifier);
            const std::string keys = good.substr(good.find("$WG5"));
            for (const std::string& bad : std::vector<std::string>{
                     std::string(""),
                     std::string("md594f6dfa9ce48919dd181f96e6e406c5f"),
                     "SCRAM-SHA-1" + good.substr(13),
                     "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
                     "SCRAM-SHA-256$4096W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
                     "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
                     "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
                     "SCRAM-SHA-256$+4096:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
                     "SCRAM-SHA-256$2147483648:W22ZaJ0SNY7soEsUEjb6gQ==" + keys,
                     "SCRAM-SHA-256$4096:" + keys,
                     "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=" + keys,
                     "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g Q==" + keys,
                     "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA",
                     good.substr(0, good.find(':', 20)),
                     good + "AAAA",
                 }) {
                CAPTURE(bad);
                CHECK(parse_verifier(bad).error() == errc::scram_malformed);
            }
        }
    }

    TEST_CASE("a client and a server agree with the right password, and only then") {
        SUBCASE("server from a plaintext password") {
            ClientExchange client("s3cret pass");
            ServerExchange server = ServerExchange::from_password("s3cret pass");
            CHECK(server.verifier().iterations == default_iterations);
            CHECK(server.verifier().salt.size() == default_salt_size);
            CHECK(converse(client, server));
        }
        SUBCASE("server from a stored verifier") {
            ClientExchange client("pencil");
            ServerExchange server(pencil());
            CHECK(converse(client, server));
            REQUIRE(server.client_key());
            CHECK(*server.client_key() == key_of(pencil_client_key));
        }
        SUBCASE("pass-through: the recovered ClientKey logs in to a second server") {
            ClientExchange client("pencil");
            ServerExchange proxy(pencil());
            REQUIRE(converse(client, proxy));
            ClientExchange onward(*proxy.client_key(), proxy.verifier().server_key);
            ServerExchange upstream(pencil());
            CHECK(converse(onward, upstream));
        }
        SUBCASE("non-ASCII and control-character passwords are used as raw bytes") {
            for (const std::string_view password : {"p\xc3\xa4ss", "\xff\xfe", "tab\tbed"}) {
                ClientExchange client(password);
                ServerExchange server = ServerExchange::from_password(password);
                CHECK(converse(client, server));
            }
        }
        SUBCASE("wrong password") {
            ClientExchange client("pencil2");
            ServerExchange server(pencil());
            CHECK_FALSE(converse(client, server));
            CHECK_FALSE(server.authenticated());
            CHECK_FALSE(server.client_key());
        }
    }

    TEST_CASE("nonces are fresh, printable and without ','") {
        const std::string a = random_nonce();
        const std::string b = random_nonce();
        CHECK(a != b);
        CHECK(a.size() == 24);
        CHECK(std::ranges::none_of(a, [](char c) { return c == ',' || c < 0x21 || c > 0x7e; }));
        CHECK(ClientExchange("pw").client_first_message().size() == 8 + 24);
        CHECK_THROWS_AS(ClientExchange("pw", ""), std::invalid_argument);
        CHECK_THROWS_AS(ClientExchange("pw", "a,b"), std::invalid_argument);
        CHECK_THROWS_AS(ServerExchange(pencil(), "a b"), std::invalid_argument);
    }

    TEST_CASE("the client rejects a malformed or hostile server-first-message") {
        const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        const std::string salt = ",s=W22ZaJ0SNY7soEsUEjb6gQ==";
        struct Case {
            std::string message;
            errc expected;
        };
        for (const Case& c : std::vector<Case>{
                 {"", errc::scram_malformed},
                 {"m=ext," + nonce + salt + ",i=4096", errc::scram_malformed},
                 {salt.substr(1) + "," + nonce + ",i=4096", errc::scram_malformed},
                 {nonce + ",i=4096", errc::scram_malformed},
                 {nonce + salt, errc::scram_malformed},
                 {nonce + salt + ",", errc::scram_malformed},
                 {nonce + salt + ",i=4096,", errc::scram_malformed},
                 {nonce + salt + ",i=4096,=x", errc::scram_malformed},
                 {"r=rOprNGfwEbeRWgbNEkqO" + salt + ",i=4096", errc::scram_nonce_mismatch},
                 {"r=XOprNGfwEbeRWgbNEkqOabc" + salt + ",i=4096", errc::scram_nonce_mismatch},
                 {"r=rOprNGfw" + salt + ",i=4096", errc::scram_nonce_mismatch},
                 {"r=rOprNGfwEbeRWgbNEkqO\x01" + salt + ",i=4096", errc::scram_malformed},
                 {nonce + ",s=,i=4096", errc::scram_malformed},
                 {nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096", errc::scram_malformed},
                 {nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ=\n=,i=4096", errc::scram_malformed},
                 {nonce + ",s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096", errc::scram_malformed},
                 {nonce + ",s=W2=ZaJ0SNY7soEsUEjb6gQ==,i=4096", errc::scram_malformed},
                 // Non-canonical: the last 'R' leaves a set bit the padding drops.
                 {nonce + ",s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096", errc::scram_malformed},
                 {nonce + salt + ",i=0", errc::scram_bad_iterations},
                 {nonce + salt + ",i=-1", errc::scram_bad_iterations},
                 {nonce + salt + ",i=", errc::scram_bad_iterations},
                 {nonce + salt + ",i=4096x", errc::scram_bad_iterations},
                 {nonce + salt + ",i=10000001", errc::scram_bad_iterations},
                 {nonce + salt + ",i=99999999999999999999", errc::scram_bad_iterations},
             }) {
            CAPTURE(c.message);
            ClientExchange client = rfc_client();
            CHECK(client.handle_server_first(c.message).error() == c.expected);
            // A failed exchange stays failed.
            CHECK(client.handle_server_first(rfc_server_first).error() == errc::scram_out_of_order);
            CHECK_FALSE(client.authenticated());
        }
        SUBCASE("extensions are ignored and the maximum count is accepted") {
            ClientExchange client = rfc_client();
            CHECK(client.handle_server_first(nonce + salt + ",i=4096,x=ext"));
            // From keys, so that the test does not run ten million PBKDF2 rounds.
            const Key key = key_of(pencil_client_key);
            ClientExchange keyed(key, key, std::string(rfc_client_nonce));
            CHECK(keyed.handle_server_first(nonce + salt + ",i=10000000"));
        }
    }

    TEST_CASE("the client rejects a bad server-final-message") {
        for (const std::string_view message : {
                 std::string_view(""),
                 std::string_view("v="),
                 std::string_view("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg"),
                 std::string_view("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBt"),
                 std::string_view("x=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="),
                 std::string_view("e"),
             }) {
            CAPTURE(message);
            ClientExchange client = pg_client_after_first();
            CHECK(client.handle_server_final(message).error() == errc::scram_malformed);
        }
        SUBCASE("a signature from another key") {
            ClientExchange client = pg_client_after_first();
            CHECK(client.handle_server_final(rfc_server_final).error() ==
                  errc::scram_signature_mismatch);
            CHECK_FALSE(client.authenticated());
        }
        SUBCASE("an e= error") {
            ClientExchange client = pg_client_after_first();
            CHECK(client.handle_server_final("e=invalid-proof").error() ==
                  errc::scram_server_error);
            CHECK_FALSE(client.authenticated());
        }
        SUBCASE("a final message before the first") {
            ClientExchange client = rfc_client();
            CHECK(client.handle_server_final(pg_server_final).error() == errc::scram_out_of_order);
        }
        SUBCASE("a second final message") {
            ClientExchange client = pg_client_after_first();
            REQUIRE(client.handle_server_final(pg_server_final));
            CHECK(client.handle_server_final(pg_server_final).error() == errc::scram_out_of_order);
        }
    }

    TEST_CASE("the server rejects a malformed client-first-message") {
        struct Case {
            std::string_view message;
            errc expected;
        };
        for (const Case& c : std::vector<Case>{
                 {"", errc::scram_malformed},
                 {"p=tls-server-end-point,,n=,r=abc", errc::scram_channel_binding},
                 {"x,,n=,r=abc", errc::scram_malformed},
                 {"n,a=bob,n=,r=abc", errc::scram_malformed},
                 {"n,", errc::scram_malformed},
                 {"n,,", errc::scram_malformed},
                 {"n,,r=abc", errc::scram_malformed},
                 {"n,,n=", errc::scram_malformed},
                 {"n,,n=,r=", errc::scram_malformed},
                 {"n,,n=,r=a b", errc::scram_malformed},
                 {"n,,m=ext,n=,r=abc", errc::scram_malformed},
                 {"n,,n=,r=abc,", errc::scram_malformed},
                 {"n,,n=,r=abc,1=x", errc::scram_malformed},
             }) {
            CAPTURE(c.message);
            ServerExchange server = rfc_server();
            CHECK(server.handle_client_first(c.message).error() == c.expected);
            CHECK(server.handle_client_first(rfc_client_first).error() == errc::scram_out_of_order);
        }
        SUBCASE("y (client could bind, thinks we cannot) and extensions are accepted") {
            ServerExchange server = rfc_server();
            CHECK(server.handle_client_first("y,,n=user,r=abc,x=ext"));
        }
    }

    TEST_CASE("the server rejects a bad client-final-message") {
        const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        struct Case {
            std::string message;
            errc expected;
        };
        for (const Case& c : std::vector<Case>{
                 {"", errc::scram_malformed},
                 {"c=biws," + nonce, errc::scram_malformed},
                 {"c=biws," + nonce + ",p=", errc::scram_malformed},
                 {"c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
                  errc::scram_malformed},
                 {"c=biws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgs", errc::scram_malformed},
                 {nonce + proof, errc::scram_malformed},
                 {"c=biws" + proof, errc::scram_malformed},
                 {"c=bi*s," + nonce + proof, errc::scram_malformed},
                 {"c=eSws," + nonce + proof, errc::scram_channel_binding},
                 {"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws," + nonce + proof,
                  errc::scram_channel_binding},
                 {"c=biws,r=rOprNGfwEbeRWgbNEkqO" + proof, errc::scram_nonce_mismatch},
                 {"c=biws," + nonce + "x" + proof, errc::scram_nonce_mismatch},
                 {"c=biws," + nonce + ",=x" + proof, errc::scram_malformed},
                 {"c=biws," + nonce + ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=",
                  errc::scram_proof_mismatch},
             }) {
            CAPTURE(c.message);
            ServerExchange server = rfc_server_after_first();
            CHECK(server.handle_client_final(c.message).error() == c.expected);
            CHECK_FALSE(server.authenticated());
            CHECK_FALSE(server.client_key());
            CHECK(server.handle_client_final(rfc_client_final).error() == errc::scram_out_of_order);
        }
        SUBCASE("a final message before the first") {
            ServerExchange server = rfc_server();
            CHECK(server.handle_client_final(rfc_client_final).error() == errc::scram_out_of_order);
        }
        SUBCASE("extensions before the proof are part of the AuthMessage") {
            // Signed without the extension, so adding one must break the proof.
            ServerExchange server = rfc_server_after_first();
            CHECK(server.handle_client_final("c=biws," + nonce + ",x=ext" + proof).error() ==
                  errc::scram_proof_mismatch);
        }
    }
}

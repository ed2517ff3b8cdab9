#include "wire/md5.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

// Expected values computed independently with Python's hashlib.
TEST_SUITE("wire.md5") {
    using wire::errc;
    using namespace wire::md5;

    constexpr Salt salt{std::byte{0x01}, std::byte{0x02}, std::byte{0x03}, std::byte{0x04}};
    constexpr Salt dead_beef{std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef}};

    TEST_CASE("the stored secret is md5 of password then user") {
        CHECK(stored_secret("md5-secret", "md5_user") == "md594f6dfa9ce48919dd181f96e6e406c5f");
        CHECK(stored_secret("pencil", "user") == "md520c46e3762c864548e296b33c3406aa9");
        CHECK(stored_secret("", "") == "md5d41d8cd98f00b204e9800998ecf8427e");
        // The order matters: PostgreSQL salts the password with the user name, not the reverse.
        CHECK(stored_secret("user", "pencil") != stored_secret("pencil", "user"));
    }

    TEST_CASE("the salted response hashes the secret's hex digits with the raw salt") {
        CHECK(salted_response("md5-secret", "md5_user", salt) ==
              "md5de5f430725caf68ade3b51e052e13b54");
        CHECK(salted_response("md5-secret", "md5_user", dead_beef) ==
              "md58dade95ffa4606e687482aa57adb7659");
        CHECK(salted_response("pencil", "user", salt) == "md54376eb6913b38f9aaff38dc7cf19ca76");
        CHECK(salted_response("pencil", "user", dead_beef) ==
              "md50f5b636d891e9860623ac8ca91fc9dfc");
        CHECK(salted_response("", "", dead_beef) == "md5031c62d9cb031675a7e90b049950be8b");
    }

    TEST_CASE("a stored secret answers without the plaintext") {
        const auto response = salted_response("md594f6dfa9ce48919dd181f96e6e406c5f", dead_beef);
        REQUIRE(response);
        CHECK(*response == "md58dade95ffa4606e687482aa57adb7659");
    }

    TEST_CASE("only a well-formed stored secret is accepted") {
        CHECK(is_stored_secret("md594f6dfa9ce48919dd181f96e6e406c5f"));
        for (const std::string& bad : std::vector<std::string>{
                 std::string(""),
                 std::string("md5"),
                 std::string("md594f6dfa9ce48919dd181f96e6e406c5"),
                 std::string("md594f6dfa9ce48919dd181f96e6e406c5ff"),
                 std::string("MD594f6dfa9ce48919dd181f96e6e406c5f"),
                 std::string("md594F6DFA9CE48919DD181F96E6E406C5F"),
                 std::string("md594f6dfa9ce48919dd181f96e6e406c5g"),
                 std::string("sha94f6dfa9ce48919dd181f96e6e406c5f"),
                 std::string("pencil"),
             }) {
            CAPTURE(bad);
            CHECK_FALSE(is_stored_secret(bad));
            CHECK(salted_response(bad, salt).error() == errc::invalid_value);
        }
    }
}

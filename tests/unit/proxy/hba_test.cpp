#include "proxy/hba.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

using proxy::AuthType;
using proxy::HbaConnection;
using proxy::HbaDecision;

namespace {

proxy::HbaRules parse(std::string_view text) {
    auto result = proxy::parse_hba(text, "hba.conf");
    for (const auto& error : result.errors())
        FAIL_CHECK(error.to_string());
    REQUIRE(result.ok());
    return result.rules();
}

std::vector<std::string> errors_of(std::string_view text) {
    auto result = proxy::parse_hba(text, "hba.conf");
    REQUIRE_FALSE(result.ok());
    std::vector<std::string> out;
    for (const auto& error : result.errors())
        out.push_back(error.to_string());
    return out;
}

HbaConnection tcp(std::string_view address, std::string_view database, std::string_view user,
                  bool tls = false) {
    return HbaConnection{false, tls, boost::asio::ip::make_address(address), database, user};
}

HbaConnection unix_socket(std::string_view database, std::string_view user) {
    return HbaConnection{true, false, std::nullopt, database, user};
}

// The method a connection gets, as text: a method's name, or "reject@N" for a reject line N,
// or "none" when no line matched.
std::string outcome(const proxy::HbaRules& rules, const HbaConnection& connection) {
    const HbaDecision decision = rules.decide(connection);
    if (decision.method) {
        return std::string(proxy::to_string(*decision.method)) + "@" +
               std::to_string(decision.line);
    }
    return decision.line == 0 ? "none" : "reject@" + std::to_string(decision.line);
}

// A file in the style of a real deployment, used by the matching table.
constexpr std::string_view deployment =
    R"(# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                trust
local   app             all                                     md5
host    all             mallory         0.0.0.0/0               reject
host    "all"           quoted          127.0.0.1/32            password
host    app,reports     alice,bob       127.0.0.1/32            scram-sha-256
host    sameuser        all             10.0.0.0/8              md5
host    replication     all             all                     trust
hostnossl all           carol           192.168.1.0 255.255.255.0 password
hostssl all             dave            all                     cert
host    all             all             ::1/128                 scram-sha-256
host    all             all             2001:db8::/32           md5
host    app             all             10.20.0.0/16            trust   # office
)";

} // namespace

TEST_SUITE("proxy.hba") {
    TEST_CASE("the first matching line decides") {
        const auto rules = parse(deployment);
        REQUIRE(rules.rules().size() == 12);
        struct Row {
            std::string_view name;
            HbaConnection connection;
            std::string_view expected;
        };
        const Row rows[] = {
            {"local line by user", unix_socket("anything", "postgres"), "trust@2"},
            {"local line by database", unix_socket("app", "alice"), "md5@3"},
            {"no local line for this database", unix_socket("reports", "alice"), "none"},
            {"a local line never matches TCP", tcp("127.0.0.1", "x", "postgres"), "none"},
            {"reject comes first", tcp("127.0.0.1", "app", "mallory"), "reject@4"},
            {"quoted all is a database called all", tcp("127.0.0.1", "all", "quoted"), "plain@5"},
            {"quoted all does not match other databases", tcp("127.0.0.1", "app", "quoted"),
             "none"},
            {"list of databases and users", tcp("127.0.0.1", "reports", "bob"), "scram-sha-256@6"},
            {"user not in the list", tcp("127.0.0.1", "app", "eve"), "none"},
            {"address outside the /32", tcp("127.0.0.2", "app", "alice"), "none"},
            {"sameuser: database named like the user", tcp("10.1.2.3", "alice", "alice"), "md5@7"},
            {"sameuser: other database", tcp("10.1.2.3", "app", "zed"), "none"},
            {"replication never matches", tcp("8.8.8.8", "replication", "x"), "none"},
            {"separate netmask column", tcp("192.168.1.77", "app", "carol"), "plain@9"},
            {"outside the netmask", tcp("192.168.2.77", "app", "carol"), "none"},
            {"hostnossl does not match TLS", tcp("192.168.1.77", "app", "carol", true), "none"},
            {"hostssl needs TLS", tcp("1.2.3.4", "app", "dave"), "none"},
            {"hostssl with TLS", tcp("1.2.3.4", "app", "dave", true), "cert@10"},
            {"IPv6 loopback", tcp("::1", "app", "zed"), "scram-sha-256@11"},
            {"IPv6 prefix", tcp("2001:db8:1::5", "app", "zed"), "md5@12"},
            {"outside the IPv6 prefix", tcp("2001:db9::5", "app", "zed"), "none"},
            {"IPv4-mapped IPv6 matches the IPv4 line", tcp("::ffff:10.20.3.4", "app", "zed"),
             "trust@13"},
            {"an IPv4 peer never matches an IPv6 line", tcp("10.30.0.1", "app", "zed"), "none"},
            {"names are case-sensitive", tcp("127.0.0.1", "App", "alice"), "none"},
        };
        for (const auto& row : rows) {
            CAPTURE(row.name);
            CHECK(outcome(rules, row.connection) == row.expected);
        }
    }

    TEST_CASE("a file of comments refuses everyone") {
        const auto rules = parse("# nothing\n\n   \t# still nothing\r\n");
        CHECK(rules.rules().empty());
        CHECK(outcome(rules, tcp("127.0.0.1", "app", "alice")) == "none");
    }

    TEST_CASE("syntax: quotes, lists, comments, line endings") {
        SUBCASE("a quoted name may hold blanks, commas, '#' and doubled quotes") {
            const auto rules = parse("host \"my db,#1\" \"say \"\"hi\"\"\" all trust\n");
            REQUIRE(rules.rules().size() == 1);
            CHECK(rules.rules()[0].databases.names == std::vector<std::string>{"my db,#1"});
            CHECK(rules.rules()[0].users.names == std::vector<std::string>{"say \"hi\""});
        }
        SUBCASE("blanks after a comma continue the list") {
            const auto rules = parse("local app, reports alice,\tbob trust");
            REQUIRE(rules.rules().size() == 1);
            CHECK(rules.rules()[0].databases.names == std::vector<std::string>{"app", "reports"});
            CHECK(rules.rules()[0].users.names == std::vector<std::string>{"alice", "bob"});
        }
        SUBCASE("a comment right after the method, and CRLF") {
            const auto rules = parse("local all all trust# why\r\nlocal all all reject\r\n");
            REQUIRE(rules.rules().size() == 2);
            CHECK(rules.rules()[0].method == AuthType::trust);
            CHECK(rules.rules()[1].method == std::nullopt);
            CHECK(rules.rules()[1].line == 2);
        }
        SUBCASE("host bits under the mask are ignored") {
            const auto rules = parse("host all all 10.1.2.3/8 trust");
            CHECK(outcome(rules, tcp("10.200.0.1", "d", "u")) == "trust@1");
        }
        SUBCASE("/0 matches every address of its family") {
            const auto rules = parse("host all all 0.0.0.0/0 md5\nhost all all ::/0 trust");
            CHECK(outcome(rules, tcp("203.0.113.9", "d", "u")) == "md5@1");
            CHECK(outcome(rules, tcp("2001:db8::1", "d", "u")) == "trust@2");
        }
        SUBCASE("an IPv6 netmask column") {
            const auto rules = parse("host all all fe80:: ffff:ffff:ffff:ffff:: trust");
            CHECK(outcome(rules, tcp("fe80::1234", "d", "u")) == "trust@1");
            CHECK(outcome(rules, tcp("fe81::1", "d", "u")) == "none");
        }
    }

    TEST_CASE("errors name the file, line and column") {
        struct Row {
            std::string_view text;
            std::string_view error;
        };
        const Row rows[] = {
            {"hots all all all trust", "hba.conf:1:1: invalid connection type \"hots\""},
            {"local,host all all trust",
             "hba.conf:1:1: multiple values specified for connection type"},
            {"hostgssenc all all all trust",
             "hba.conf:1:1: connection type \"hostgssenc\" is not supported: pgmarina has no "
             "GSSAPI encryption"},
            {"local", "hba.conf:1:1: end-of-line before database specification"},
            {"local all", "hba.conf:1:7: end-of-line before role specification"},
            {"local all all", "hba.conf:1:11: end-of-line before authentication method "
                              "specification"},
            {"host all all", "hba.conf:1:10: end-of-line before IP address specification"},
            {"host all all 10.0.0.1 trust", "hba.conf:1:23: invalid IP mask \"trust\""},
            {"host all all 10.0.0.1", "hba.conf:1:14: end-of-line before netmask specification"},
            {"host all all 10.0.0.0/33 trust",
             "hba.conf:1:14: invalid CIDR mask in address \"10.0.0.0/33\""},
            {"host all all ::/129 trust", "hba.conf:1:14: invalid CIDR mask in address \"::/129\""},
            {"host all all 10.0.0.0/ trust",
             "hba.conf:1:14: invalid CIDR mask in address \"10.0.0.0/\""},
            {"host all all 10.0.0.0/x8 trust",
             "hba.conf:1:14: invalid CIDR mask in address \"10.0.0.0/x8\""},
            {"host all all 10.0.0.300/8 trust",
             "hba.conf:1:14: invalid IP address \"10.0.0.300/8\""},
            {"host all all 10.0.0 255.0.0.0 trust", "hba.conf:1:14: invalid IP address \"10.0.0\""},
            {"host all all 10.0.0.0 255.0.255.0 trust",
             "hba.conf:1:23: invalid IP mask \"255.0.255.0\": its one bits must come first"},
            {"host all all 10.0.0.0 ffff:: trust",
             "hba.conf:1:23: IP address and mask \"ffff::\" do not match"},
            {"host all all db.example.com md5",
             "hba.conf:1:14: host names (\"db.example.com\") are not supported: pgmarina does not "
             "resolve them; write an IP address with a mask"},
            {"host all all .example.com md5",
             "hba.conf:1:14: host names (\".example.com\") are not supported: pgmarina does not "
             "resolve them; write an IP address with a mask"},
            {"host all all samenet md5",
             "hba.conf:1:14: \"samenet\" is not supported: pgmarina does not read the server's "
             "interfaces; write the addresses"},
            {"host all all 10.0.0.0/8,::1/128 md5",
             "hba.conf:1:14: multiple values specified for IP address"},
            {"local all all magic", "hba.conf:1:15: invalid authentication method \"magic\""},
            {"local all all peer",
             "hba.conf:1:15: authentication method \"peer\" is not supported by pgmarina"},
            {"host all all all ldap",
             "hba.conf:1:18: authentication method \"ldap\" is not supported by pgmarina"},
            {"host all all all cert",
             "hba.conf:1:18: cert authentication is only supported on hostssl connections"},
            {"hostssl all all all cert clientcert=verify-full",
             "hba.conf:1:26: authentication options are not supported "
             "(\"clientcert=verify-full\")"},
            {"local samerole all md5",
             "hba.conf:1:7: \"samerole\" is not supported: pgmarina does not know role membership"},
            {"local all +admins md5", "hba.conf:1:11: group names (\"+admins\") are not supported: "
                                      "pgmarina does not know role membership"},
            {"local @dbs all md5",
             "hba.conf:1:7: file inclusion (\"@dbs\") is not supported; list the names"},
            {"local all /^a md5", "hba.conf:1:11: regular expressions (\"/^a\") are not "
                                  "supported; quote the name to use it as written"},
            {"local \"app all md5", "hba.conf:1:7: unterminated quoted string"},
            {"local app,,x all md5", "hba.conf:1:11: empty name in a comma-separated list"},
            // A blank after a comma continues the list, so these lines are a field short.
            {"local app, all", "hba.conf:1:7: end-of-line before role specification"},
            {"local app all, md5",
             "hba.conf:1:11: end-of-line before authentication method specification"},
        };
        for (const auto& row : rows) {
            CAPTURE(row.text);
            CHECK(errors_of(row.text) == std::vector<std::string>{std::string(row.error)});
        }
    }

    TEST_CASE("every bad line is reported, with its own line number") {
        CHECK(
            errors_of("# header\n"
                      "local all all trust\n"
                      "host all all 10.0.0.0/40 md5\n"
                      "\n"
                      "host all all all bogus\n") ==
            std::vector<std::string>{"hba.conf:3:14: invalid CIDR mask in address \"10.0.0.0/40\"",
                                     "hba.conf:5:18: invalid authentication method \"bogus\""});
    }

    TEST_CASE("quoted keywords and special names are plain names") {
        const auto rules =
            parse("host \"sameuser\",\"replication\" \"+admins\",\"/x\" all trust\n");
        REQUIRE(rules.rules().size() == 1);
        CHECK(outcome(rules, tcp("1.1.1.1", "replication", "+admins")) == "trust@1");
        CHECK(outcome(rules, tcp("1.1.1.1", "sameuser", "/x")) == "trust@1");
        CHECK(outcome(rules, tcp("1.1.1.1", "u", "u")) == "none");
    }

    TEST_CASE("refusal messages use PostgreSQL's wording") {
        const auto rules = parse("host all mallory all reject\n");
        const auto refused = tcp("192.0.2.7", "app", "mallory");
        CHECK(proxy::hba_refusal(refused, rules.decide(refused)) ==
              "pg_hba.conf rejects connection for host \"192.0.2.7\", user \"mallory\", "
              "database \"app\", no encryption");
        const auto unmatched = unix_socket("app", "alice");
        CHECK(proxy::hba_refusal(unmatched, rules.decide(unmatched)) ==
              "no pg_hba.conf entry for host \"[local]\", user \"alice\", database \"app\", no "
              "encryption");
        const auto encrypted = tcp("::1", "app", "bob", true);
        CHECK(proxy::hba_refusal(encrypted, rules.decide(encrypted)) ==
              "no pg_hba.conf entry for host \"::1\", user \"bob\", database \"app\", SSL "
              "encryption");
    }

    TEST_CASE("load_hba_file reads a file, and reports one it cannot read") {
        const auto dir = std::filesystem::temp_directory_path();
        const auto path = dir / "pgmarina-hba-test.conf";
        std::ofstream(path) << "local all all md5\n";
        const auto loaded = proxy::load_hba_file(path);
        REQUIRE(loaded.ok());
        CHECK(outcome(loaded.rules(), unix_socket("d", "u")) == "md5@1");
        std::filesystem::remove(path);

        const auto missing = proxy::load_hba_file(path);
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.errors().front().to_string() ==
              path.string() + ": cannot open: No such file or directory");
        const auto directory = proxy::load_hba_file(dir);
        REQUIRE_FALSE(directory.ok());
        CHECK(directory.errors().front().to_string() == dir.string() + ": is a directory");
    }
}

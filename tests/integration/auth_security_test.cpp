// What client authentication must not give away, through a real pgmarina in front of
// PostgreSQL 15: whether a user exists, the secrets it checks against (in its log), an unbounded
// wait for a silent client, and unbounded metric series for made-up user names.

#include "tests/support/http.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using support::PgCluster;
using support::PgmarinaProcess;
namespace pq = support::pq;
namespace raw = support::raw;

// The secrets PostgreSQL stores for the cluster's users, as pg_authid.rolpassword holds them.
struct StoredSecrets {
    std::string md5;   // md5_user's "md5..." hash
    std::string scram; // scram_user's "SCRAM-SHA-256$..." verifier
};

StoredSecrets stored_secrets(const PgCluster& cluster) {
    auto superuser = pq::Connection::connect(cluster.conninfo(0, "postgres", "postgres"));
    REQUIRE_MESSAGE(superuser.ok(), superuser.error_message());
    const auto secret_of = [&](const std::string& user) {
        const auto result =
            superuser.exec("SELECT rolpassword FROM pg_authid WHERE rolname = '" + user + "'");
        REQUIRE(result.ok());
        REQUIRE(result.ntuples() == 1);
        return result.value(0, 0);
    };
    return {secret_of("md5_user"), secret_of("scram_user")};
}

std::string database_section(const PgCluster& cluster) {
    return "[databases.app]\nhosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) + "\"]\n";
}

// The pgmarina most cases share: the auth_hba_file gives each cluster user its own exchange, so
// one process runs all three with secrets of all three forms; servers are logged in to as the
// client's user, with what its login revealed.
std::string config_for(const PgCluster& cluster, const StoredSecrets& secrets, std::uint16_t port,
                       std::uint16_t metrics_port, const std::filesystem::path& hba_file) {
    return "[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "client_login_timeout = 5\n"
           "log_connections = true\n"
           "log_disconnections = true\n"
           "auth_type = \"hba\"\n"
           "auth_hba_file = \"" +
           hba_file.string() +
           "\"\n[metrics]\nlisten = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n" +
           database_section(cluster) + "[users.plain_user]\npassword = \"" +
           cluster.password("plain_user") +
           "\"\n"
           "[users.md5_user]\npassword = \"" +
           secrets.md5 +
           "\"\n"
           "[users.scram_user]\npassword = \"" +
           secrets.scram +
           "\"\n"
           "[users.mallory]\npassword = \"mallory-password\"\n";
}

constexpr std::string_view hba_conf = "host app plain_user 127.0.0.1/32 password\n"
                                      "host app md5_user   127.0.0.1/32 md5\n"
                                      "host all mallory    all          reject\n"
                                      "host app all        127.0.0.1/32 scram-sha-256\n";

bool write_file(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
    return true;
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    StoredSecrets secrets = stored_secrets(cluster);
    std::filesystem::path dir =
        support::make_temp_dir(std::filesystem::temp_directory_path(), "pgmarina-auth.");
    bool written = write_file(dir / "hba.conf", hba_conf);
    std::uint16_t port = PgmarinaProcess::free_port();
    std::uint16_t metrics_port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, secrets, port, metrics_port, dir / "hba.conf"),
                             port};

    Setup() = default;
    Setup(const Setup&) = delete;
    Setup& operator=(const Setup&) = delete;
    ~Setup() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
};

Setup& setup() {
    static Setup instance;
    return instance;
}

#define PGMARINA_LOG_ON_FAILURE()                                                                  \
    INFO("end of pgmarina's log:" << support::log_tail(setup().pgmarina))

std::uint32_t int32_at(std::string_view bytes, std::size_t at) {
    REQUIRE(bytes.size() >= at + 4);
    std::uint32_t value = 0;
    for (std::size_t i = at; i < at + 4; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

// The value of attribute `name` ("r", "i") in a SCRAM message "r=...,s=...,i=...".
std::string scram_attribute(std::string_view message, char name) {
    std::size_t at = 0;
    while (at < message.size()) {
        const std::size_t end = std::min(message.find(',', at), message.size());
        const std::string_view part = message.substr(at, end - at);
        if (part.size() >= 2 && part[0] == name && part[1] == '=')
            return std::string(part.substr(2));
        at = end + 1;
    }
    FAIL("no " << name << "= in " << message);
    return "";
}

// What a client that does not know the password sees: the Authentication request it gets, the
// SCRAM iteration count and salt when it is SCRAM, and everything pgmarina says after the wrong
// answer.
struct WrongAnswer {
    std::uint32_t request = 0;
    std::string iterations; // SCRAM only
    std::string salt;       // SCRAM only
    std::vector<raw::Message> replies;
    bool closed = false;
};

// Starts a login as `user` to app and answers whatever pgmarina asks with a wrong password: a
// cleartext one, an md5 hash of nothing, or a SCRAM proof of zeros.
WrongAnswer answer_wrongly(std::uint16_t port, const std::string& user) {
    raw::Client client(port);
    REQUIRE(client.send(raw::startup_message({{"user", user}, {"database", "app"}})));
    const auto request = client.read();
    REQUIRE(request.has_value());
    REQUIRE(request->type == 'R');
    WrongAnswer seen;
    seen.request = int32_at(request->body, 0);
    switch (seen.request) {
    case 3: // AuthenticationCleartextPassword
        REQUIRE(client.send(raw::message('p', std::string("wrong-password-3141") + '\0')));
        break;
    case 5: // AuthenticationMD5Password
        REQUIRE(client.send(raw::message('p', "md5" + std::string(32, '0') + '\0')));
        break;
    case 10: { // AuthenticationSASL
        const std::string client_first = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
        REQUIRE(client.send(raw::message(
            'p', std::string("SCRAM-SHA-256") + '\0' +
                     raw::int32(static_cast<std::uint32_t>(client_first.size())) + client_first)));
        const auto challenge = client.read();
        REQUIRE(challenge.has_value());
        REQUIRE(challenge->type == 'R');
        REQUIRE(int32_at(challenge->body, 0) == 11); // AuthenticationSASLContinue
        const std::string server_first = challenge->body.substr(4);
        seen.iterations = scram_attribute(server_first, 'i');
        seen.salt = scram_attribute(server_first, 's');
        const std::string zero_proof = std::string(43, 'A') + "=";
        REQUIRE(client.send(raw::message('p', "c=biws,r=" + scram_attribute(server_first, 'r') +
                                                  ",p=" + zero_proof)));
        break;
    }
    default:
        FAIL("unexpected authentication request " << seen.request);
    }
    seen.replies = client.read_until_closed();
    seen.closed = client.closed();
    return seen;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// The value of the pgmarina_auth_failures_total series with exactly these labels, 0 if absent.
double auth_failures(const std::string& metrics, const std::string& labels) {
    const std::string series = "\npgmarina_auth_failures_total{" + labels + "} ";
    const auto at = metrics.find(series);
    if (at == std::string::npos) return 0;
    return std::stod(metrics.substr(at + series.size()));
}

} // namespace

TEST_SUITE("integration.auth_security") {

    TEST_CASE("a wrong password and an unknown user look the same, and end the connection") {
        // One pgmarina per auth_type, without the auth_hba_file: the default way to run it.
        const auto& cluster = setup().cluster;
        for (const std::string auth_type : {"plain", "md5", "scram-sha-256"}) {
            CAPTURE(auth_type);
            const std::uint16_t port = PgmarinaProcess::free_port();
            PgmarinaProcess pgmarina{"[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
                                         "\"]\nunix_socket_dir = \"\"\nauth_type = \"" + auth_type +
                                         "\"\n" + database_section(cluster) +
                                         "[users.scram_user]\npassword = \"" +
                                         cluster.password("scram_user") + "\"\n",
                                     port};
            const WrongAnswer known = answer_wrongly(port, "scram_user");
            const WrongAnswer unknown = answer_wrongly(port, "no_such_user");
            CHECK(known.request == unknown.request);
            CHECK(known.iterations == unknown.iterations);
            // A SCRAM salt is the same at every attempt for a user with a stored verifier; so it
            // must be for users with a plain password and for unknown users, or asking twice
            // would tell them apart.
            CHECK(answer_wrongly(port, "scram_user").salt == known.salt);
            CHECK(answer_wrongly(port, "no_such_user").salt == unknown.salt);
            if (auth_type == "scram-sha-256") CHECK(known.salt != unknown.salt);
            REQUIRE(known.replies.size() == 1);
            REQUIRE(unknown.replies.size() == 1);
            CHECK(known.replies[0].type == 'E');
            CHECK(known.replies[0].field('C') == "28P01");
            CHECK(known.replies[0].field('M') ==
                  "password authentication failed for user \"scram_user\"");
            // Every field alike, the name apart.
            CHECK(unknown.replies[0].type == 'E');
            CHECK(replace_all(unknown.replies[0].body, "no_such_user", "scram_user") ==
                  known.replies[0].body);
            CHECK(known.closed);
            CHECK(unknown.closed);
        }
    }

    TEST_CASE("no password, md5 hash, SCRAM verifier or key reaches pgmarina's log") {
        PGMARINA_LOG_ON_FAILURE();
        const auto& cluster = setup().cluster;
        const std::vector<std::string> users{"plain_user", "md5_user", "scram_user"};
        for (const auto& user : users) {
            CAPTURE(user);
            auto wrong = pq::Connection::connect(
                setup().pgmarina.conninfo(user, "wrong-" + user + "-password", "app"));
            CHECK(wrong.sqlstate() == "28P01");
            auto right = pq::Connection::connect(
                setup().pgmarina.conninfo(user, cluster.password(user), "app"));
            REQUIRE_MESSAGE(right.ok(), right.error_message());
            CHECK(right.exec("SELECT current_user").value(0, 0) == user);
        }
        const WrongAnswer unknown = answer_wrongly(setup().port, "no_such_user");
        CHECK(unknown.closed);

        const std::string& verifier = setup().secrets.scram;
        const auto dollar = verifier.rfind('$');
        const auto colon = verifier.rfind(':');
        REQUIRE(dollar != std::string::npos);
        REQUIRE(colon > dollar);
        std::vector<std::string> secrets{
            verifier, verifier.substr(dollar + 1, colon - dollar - 1), // StoredKey
            verifier.substr(colon + 1),                                // ServerKey
            setup().secrets.md5, setup().secrets.md5.substr(3)};
        for (const auto& user : users) {
            secrets.push_back(cluster.password(user));
            secrets.push_back("wrong-" + user + "-password");
        }
        const std::string log = setup().pgmarina.log();
        // The log is not empty: the logins were logged, and the check below has something to
        // search.
        REQUIRE(log.find("login attempt: ok") != std::string::npos);
        for (const auto& secret : secrets) {
            CAPTURE(secret);
            CHECK(log.find(secret) == std::string::npos);
        }
    }

    TEST_CASE("client_login_timeout bounds the whole login, whatever stage the client stalls at") {
        const std::uint16_t port = PgmarinaProcess::free_port();
        PgmarinaProcess pgmarina{"[pgmarina]\nlisten = [\"127.0.0.1:" + std::to_string(port) +
                                     "\"]\nunix_socket_dir = \"\"\nauth_type = "
                                     "\"scram-sha-256\"\nclient_login_timeout = 1\n" +
                                     database_section(setup().cluster) +
                                     "[users.scram_user]\npassword = \"" +
                                     setup().cluster.password("scram_user") + "\"\n",
                                 port};
        const auto startup = raw::startup_message({{"user", "scram_user"}, {"database", "app"}});
        const std::string client_first = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
        const std::string sasl_initial = raw::message(
            'p', std::string("SCRAM-SHA-256") + '\0' +
                     raw::int32(static_cast<std::uint32_t>(client_first.size())) + client_first);
        struct Stall {
            const char* name;
            std::vector<std::string> sent;
            std::size_t replies_before_error; // Authentication requests pgmarina sent
        };
        const Stall stalls[] = {
            {"before the startup packet", {}, 0},
            {"half a startup packet", {startup.substr(0, 6)}, 0},
            {"never answering AuthenticationSASL", {startup}, 1},
            {"after the SCRAM client-first-message", {startup, sasl_initial}, 2},
        };
        for (const auto& stall : stalls) {
            CAPTURE(stall.name);
            raw::Client client(port);
            const auto start = std::chrono::steady_clock::now();
            for (const auto& bytes : stall.sent)
                REQUIRE(client.send(bytes));
            const auto replies = client.read_until_closed(5s);
            const auto elapsed = std::chrono::steady_clock::now() - start;
            CHECK(client.closed());
            CHECK(elapsed >= 900ms);
            CHECK(elapsed < 2500ms);
            REQUIRE(replies.size() == stall.replies_before_error + 1);
            for (std::size_t i = 0; i < stall.replies_before_error; ++i)
                CHECK(replies[i].type == 'R');
            CHECK(replies.back().type == 'E');
            CHECK(replies.back().field('C') == "08P01");
            CHECK(replies.back().field('M') == "client_login_timeout");
        }
    }

    TEST_CASE("auth failures are counted by database and user, unknown users under user=\"\"") {
        PGMARINA_LOG_ON_FAILURE();
        const auto scrape = [] {
            const auto response = support::http_get(setup().metrics_port, "/metrics");
            REQUIRE(response.starts_with("HTTP/1.1 200"));
            // From the blank line's newline, so that every series line follows a "\n".
            return response.substr(response.find("\r\n\r\n") + 3);
        };
        const std::string scram_user =
            "database=\"app\",method=\"scram-sha-256\",user=\"scram_user\"";
        const std::string md5_user = "database=\"app\",method=\"md5\",user=\"md5_user\"";
        const std::string unknown = "database=\"app\",method=\"scram-sha-256\",user=\"\"";
        const std::string rejected = "database=\"app\",method=\"reject\",user=\"mallory\"";
        const std::string before = scrape();

        for (int i = 0; i < 2; ++i)
            CHECK(answer_wrongly(setup().port, "scram_user").closed);
        CHECK(answer_wrongly(setup().port, "md5_user").closed);
        for (const std::string name : {"guess_admin", "guess_root", "guess_oracle"})
            CHECK(answer_wrongly(setup().port, name).closed);
        auto mallory = pq::Connection::connect(
            setup().pgmarina.conninfo("mallory", "mallory-password", "app"));
        CHECK(mallory.sqlstate() == "28000");

        const std::string after = scrape();
        CAPTURE(after.substr(after.find("pgmarina_auth_failures_total")));
        CHECK(auth_failures(after, scram_user) - auth_failures(before, scram_user) == 2);
        CHECK(auth_failures(after, md5_user) - auth_failures(before, md5_user) == 1);
        CHECK(auth_failures(after, unknown) - auth_failures(before, unknown) == 3);
        CHECK(auth_failures(after, rejected) - auth_failures(before, rejected) == 1);
        CHECK(after.find("guess_") == std::string::npos);
    }
}

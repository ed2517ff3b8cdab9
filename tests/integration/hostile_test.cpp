// Hostile and malformed client input sent to a live pgmarina while pgbench runs through it: bad
// lengths, truncated and oversized packets, unknown protocol versions, messages out of order,
// broken startup parameters, clients that stall, flood or never read. Each case states how
// PostgreSQL (or PgBouncer, where it answers for the server) would end it: an ErrorResponse with
// a given SQLSTATE and a close, a clean close, or an answer after which the session goes on.
// At the end pgbench has not failed a single transaction, pgmarina is up, and its open files
// and resident memory are back where they were before the hostile clients came.

#include "tests/support/command.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/raw_client.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::PgCluster;
using support::PgmarinaProcess;
namespace raw = support::raw;

constexpr std::uint32_t max_packet_size = 1024 * 1024;
constexpr int pool_size = 10;

// auth_type trust, so that raw clients log in with a StartupMessage alone. One pool for pgbench
// and the hostile clients alike: what a hostile client does to a server, pgbench would feel.
// No reserve pool, so that the number of server connections never exceeds pool_size.
std::string config_for(const PgCluster& cluster, std::uint16_t listen_port) {
    return "[pgmarina]\nworkers = 2\nlisten = [\"127.0.0.1:" + std::to_string(listen_port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "auth_type = \"trust\"\n"
           "max_packet_size = " +
           std::to_string(max_packet_size) +
           "\n"
           "default_pool_size = " +
           std::to_string(pool_size) +
           "\n"
           "reserve_pool_size = 0\n"
           "max_client_conn = 1000\n"
           "client_login_timeout = 2\n"
           "server_connect_timeout = 2\n"
           "[databases.app]\nhosts = [\"127.0.0.1:" +
           std::to_string(cluster.port(0)) + "\"]\n[users.scram_user]\npassword = \"" +
           cluster.password("scram_user") + "\"\n";
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    std::uint16_t port = PgmarinaProcess::free_port();
    PgmarinaProcess pgmarina{config_for(cluster, port), port};
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string pgbench(const std::string& args, int port) {
    return "PGPASSWORD=" + setup().cluster.password("scram_user") + " pgbench -h 127.0.0.1 -p " +
           std::to_string(port) + " -U scram_user " + args + " app";
}

// The query every case that expects the session to go on sends after its hostile bytes; its
// DataRow is recognisable whatever came before it.
constexpr std::string_view probe_text = "hostile-probe";
const std::string probe = raw::query("SELECT 'hostile-probe'");

// What a client saw, compactly: each message's type ('E' with its SQLSTATE, 'Z' with its status;
// ParameterStatus left out, their number is the server's business), "alive" once the probe was
// answered, and "closed" if pgmarina closed the connection.
std::string outcome(raw::Client& client, std::chrono::milliseconds timeout = 4s) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    bool probe_answered = false;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= 0ms) return out + "timeout";
        auto message = client.read(left);
        if (!message) return out + (client.closed() ? "closed" : "timeout");
        if (probe_answered) {
            if (message->type == 'Z') return out + "alive";
            continue;
        }
        if (message->type == 'D' && message->body.find(probe_text) != std::string::npos) {
            probe_answered = true;
            continue;
        }
        if (message->type == 'T' && message->body.find("?column?") != std::string::npos) {
            continue; // the probe's RowDescription
        }
        if (message->type == 'S') continue;
        out += message->type;
        if (message->type == 'E') out += ":" + message->field('C');
        if (message->type == 'Z') out += message->body;
        out += ' ';
    }
}

// A fresh connection that sends `bytes` first thing.
std::string first_packet(const std::string& bytes) {
    raw::Client client{setup().port};
    client.send(bytes);
    return outcome(client);
}

// A logged-in client that sends `bytes`, then the probe.
std::string after_login(const std::string& bytes) {
    raw::Client client{setup().port};
    client.log_in_trusted("scram_user", "app");
    client.send(bytes);
    client.send(probe);
    return outcome(client);
}

std::string startup(const raw::Parameters& parameters, std::int32_t version = raw::protocol_3_0) {
    return raw::startup_message(parameters, version);
}

std::string request(std::uint32_t code, const std::string& body = "") {
    return raw::int32(static_cast<std::uint32_t>(8 + body.size())) + raw::int32(code) + body;
}

const std::string ssl_request = request(80877103);
const std::string gssenc_request = request(80877104);
const raw::Parameters good = {{"user", "scram_user"}, {"database", "app"}};

std::string cstr(std::string_view s) {
    return std::string(s) + '\0';
}

std::string i16(std::uint16_t v) {
    return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

// Extended-protocol messages, built by hand.
std::string parse(std::string_view name, std::string_view sql) {
    return raw::message('P', cstr(name) + cstr(sql) + i16(0));
}
std::string bind(std::string_view portal, std::string_view statement) {
    return raw::message('B', cstr(portal) + cstr(statement) + i16(0) + i16(0) + i16(0));
}
std::string execute(std::string_view portal) {
    return raw::message('E', cstr(portal) + raw::int32(0));
}
const std::string sync = raw::message('S', "");
const std::string flush = raw::message('H', "");

// Each of `requests` (SSLRequest or GSSENCRequest) once the answer to the one before has come
// back, then `after`; the one-byte answers and what came back.
std::string after_refusals(const std::vector<std::string>& requests, const std::string& after) {
    raw::Client client{setup().port};
    std::string out;
    for (const auto& request : requests) {
        client.send(request);
        const auto answer = client.read_byte();
        if (!answer) return out + (client.closed() ? "closed" : "timeout");
        out += std::string(1, *answer) + " ";
    }
    client.send(after);
    return out + outcome(client);
}

// A startup packet sent one byte a second: client_login_timeout (2 s) must end it.
std::string slow_startup() {
    raw::Client client{setup().port};
    const std::string packet = startup(good);
    const auto start = Clock::now();
    for (const char byte : packet) {
        client.send(std::string(1, byte));
        auto message = client.read(1s);
        if (message || client.closed()) {
            std::string out = message ? std::string(1, message->type) : "";
            if (message && message->type == 'E') out += ":" + message->field('C');
            const auto rest = outcome(client, 2s);
            return out + " " + rest + (Clock::now() - start < 4s ? " in time" : " late");
        }
    }
    return "logged in after " + std::to_string(packet.size()) + " s";
}

// A client that asks for ~100 MB of rows and never reads them: pgmarina must neither buffer
// them nor stall; its resident memory may not grow by more than 64 MB.
std::string never_reads(long rss_before_kb) {
    raw::Client client{setup().port};
    client.log_in_trusted("scram_user", "app");
    client.send(raw::query("SELECT repeat('x', 1000) FROM generate_series(1, 100000)"));
    std::this_thread::sleep_for(3s);
    const long grown = support::proc_status_kb(setup().pgmarina.pid(), "VmRSS") - rss_before_kb;
    if (setup().pgmarina.sanitized()) return "bounded"; // see PgmarinaProcess::sanitized()
    return grown < 64 * 1024 ? "bounded" : "grew " + std::to_string(grown) + " kB";
}

// Many connections, each with a CancelRequest for a random key: each is closed without a word.
std::string cancel_flood() {
    std::mt19937 random(42);
    int closed_silently = 0;
    constexpr int count = 300;
    for (int i = 0; i < count; ++i) {
        raw::Client client{setup().port};
        client.send(request(80877102, raw::int32(random()) + raw::int32(random())));
        if (client.read_until_closed(2s).empty() && client.closed()) ++closed_silently;
    }
    return std::to_string(closed_silently) + "/" + std::to_string(count) + " closed";
}

// Many connections that close before saying anything, or after half a header.
std::string connect_flood() {
    for (int i = 0; i < 200; ++i) {
        raw::Client client{setup().port};
        if (i % 2 == 1) client.send(raw::int32(8).substr(0, 2));
    }
    raw::Client check{setup().port};
    check.log_in_trusted("scram_user", "app");
    check.send(probe);
    return outcome(check);
}

// Terminate inside a transaction; the pool's next user must not be inside it.
std::string terminate_in_transaction() {
    {
        raw::Client client{setup().port};
        client.log_in_trusted("scram_user", "app");
        if (client.run("BEGIN").back().body != "T") return "BEGIN failed";
        if (client.run("CREATE TEMP TABLE hostile_left_behind (x int)").back().body != "T")
            return "CREATE failed";
        client.send(raw::message('X', ""));
        const auto rest = client.read_until_closed(3s);
        if (!rest.empty() || !client.closed()) return "not closed after Terminate";
    }
    // Every server of the pool, one after the other: none has the table.
    std::vector<std::unique_ptr<raw::Client>> clients;
    for (int i = 0; i < pool_size; ++i) {
        auto client = std::make_unique<raw::Client>(setup().port);
        client->log_in_trusted("scram_user", "app");
        client->send(raw::query("SELECT count(*) FROM pg_tables WHERE tablename = "
                                "'hostile_left_behind'"));
        for (const auto& message : client->read_until('Z')) {
            if (message.type == 'D' && message.body.find('0') == std::string::npos)
                return "a server kept the transaction";
        }
        clients.push_back(std::move(client));
    }
    return "clean";
}

struct Case {
    const char* what;
    std::function<std::string()> run;
    std::string expected;
};

std::vector<Case> catalogue(long rss_before_kb) {
    const std::string huge_startup = startup({{"user", "scram_user"},
                                              {"database", "app"},
                                              {"application_name", std::string(20'000, 'a')}});
    return {
        // Lengths of the first packet.
        {"startup length 0", [] { return first_packet(raw::int32(0) + raw::int32(196608)); },
         "E:08P01 closed"},
        {"startup length 3", [] { return first_packet(raw::int32(3) + raw::int32(196608)); },
         "E:08P01 closed"},
        {"startup length negative",
         [] { return first_packet(raw::int32(0x80000000u) + raw::int32(196608)); },
         "E:08P01 closed"},
        {"startup length 2^31-1",
         [] { return first_packet(raw::int32(0x7fffffffu) + raw::int32(196608)); },
         "E:08P01 closed"},
        {"startup length just over 10000",
         [] { return first_packet(raw::int32(10'001) + raw::int32(196608)); }, "E:08P01 closed"},
        {"startup packet of 20 kB", [huge_startup] { return first_packet(huge_startup); },
         "E:08P01 closed"},
        {"startup packet cut short, then silence (client_login_timeout)",
         [] { return first_packet(startup(good).substr(0, 20)); }, "E:08P01 closed"},
        // Versions and request codes.
        {"protocol 2.0", [] { return first_packet(startup(good, 2 << 16)); }, "E:0A000 closed"},
        {"protocol 4.0", [] { return first_packet(startup(good, 4 << 16)); }, "E:0A000 closed"},
        {"unknown request code 1234/5680", [] { return first_packet(request(80877104 + 76)); },
         "E:0A000 closed"},
        {"CancelRequest of 12 bytes", [] { return first_packet(request(80877102, raw::int32(1))); },
         "E:08P01 closed"},
        // Startup parameters.
        {"no user",
         [] {
             return first_packet(startup({{"database", "app"}}));
         },
         "E:28000 closed"},
        {"unknown database",
         [] {
             return first_packet(startup({{"user", "scram_user"}, {"database", "nope"}}));
         },
         "E:3D000 closed"},
        {"unknown user",
         [] {
             return first_packet(startup({{"user", "nobody"}, {"database", "app"}}));
         },
         "E:28000 closed"},
        {"user name not UTF-8",
         [] {
             return first_packet(startup({{"user", "\xff\xfe\x80"}, {"database", "app"}}));
         },
         "E:28000 closed"},
        {"database name not UTF-8",
         [] {
             return first_packet(startup({{"user", "scram_user"}, {"database", "app\xc3\x28"}}));
         },
         "E:3D000 closed"},
        {"parameter list without its terminator",
         [] {
             std::string body = raw::int32(196608) + cstr("user") + cstr("scram_user");
             return first_packet(raw::int32(static_cast<std::uint32_t>(body.size() + 4)) + body);
         },
         "E:08P01 closed"},
        {"parameter name without a value",
         [] {
             std::string body = raw::int32(196608) + cstr("user") + cstr("scram_user") + "database";
             return first_packet(raw::int32(static_cast<std::uint32_t>(body.size() + 4)) + body);
         },
         "E:08P01 closed"},
        {"embedded NUL splits a value into a stray name",
         [] {
             return first_packet(
                 startup({{"user", std::string("scram\0user", 10)}, {"database", "app"}}));
         },
         "E:08P01 closed"},
        {"unsupported startup parameter",
         [] {
             return first_packet(
                 startup({{"user", "scram_user"}, {"database", "app"}, {"work_mem", "1GB"}}));
         },
         "E:08P01 closed"},
        // SSL and GSS requests.
        {"garbage in the same packet as SSLRequest (buffer stuffing)",
         [] { return first_packet(ssl_request + raw::query("SELECT 1")); }, "closed"},
        {"garbage after SSLRequest's N",
         [] { return after_refusals({ssl_request}, "GET / HTTP/1.1\r\n\r\n"); },
         "N E:08P01 closed"},
        // PostgreSQL refuses a second request with 0A000; PgBouncer and pgmarina answer 'N'
        // again, which a client can only take as a refusal.
        {"SSLRequest twice, then a good startup",
         [] {
             return after_refusals({ssl_request, ssl_request}, startup(good) + probe);
         },
         "N N R K ZI alive"},
        {"GSSENCRequest, then SSLRequest, then a good startup",
         [] {
             return after_refusals({gssenc_request, ssl_request}, startup(good) + probe);
         },
         "N N R K ZI alive"},
        // Bug fixed: the query waited for more bytes that never came.
        {"a Query in the same packet as the StartupMessage",
         [] { return first_packet(startup(good) + probe); }, "R K ZI alive"},
        // Stalling clients.
        {"one byte a second (client_login_timeout 2 s)", slow_startup, "E:08P01 closed in time"},
        {"connect and say nothing (client_login_timeout 2 s)", [] { return first_packet(""); },
         "E:08P01 closed"},
        // Floods.
        {"300 CancelRequests with random keys", cancel_flood, "300/300 closed"},
        {"200 connections dropped at once or after half a header", connect_flood, "alive"},
        // Protocol messages out of order, once logged in.
        {"Execute before Bind", [] { return after_login(execute("") + sync); }, "E:34000 ZI alive"},
        {"Sync alone", [] { return after_login(sync); }, "ZI alive"},
        {"Bind to a statement never parsed", [] { return after_login(bind("", "nope") + sync); },
         "E:26000 ZI alive"},
        {"Parse, Bind, Execute with Flush and no Sync, then Sync",
         [] {
             return after_login(parse("", "SELECT 1") + bind("", "") + execute("") + flush + sync);
         },
         "1 2 D C ZI alive"},
        {"an error in a pipeline skips to Sync",
         [] {
             return after_login(parse("", "SELECT 1/0") + bind("", "") + execute("") +
                                parse("", "SELECT 1") + bind("", "") + execute("") + sync);
         },
         "1 E:22012 ZI alive"}, // 1/0 is folded when the unnamed statement is planned, at Bind
        // auth_type trust: no challenge ever comes, so a password is a message out of place.
        {"PasswordMessage behind the StartupMessage, before any challenge",
         [] { return first_packet(startup(good) + raw::message('p', cstr("secret"))); },
         "R K ZI E:08P01 closed"},
        {"PasswordMessage after login",
         [] { return after_login(raw::message('p', cstr("secret"))); }, "E:08P01 closed"},
        // Bug fixed: its first bytes read as type 0 with a length of kilobytes, and pgmarina
        // waited for them instead of refusing the type at once, as PostgreSQL does.
        {"a second StartupMessage after login", [] { return after_login(startup(good)); },
         "E:08P01 closed"},
        // PostgreSQL ignores these outside COPY; pgmarina drops them unlinked (PgBouncer #1471).
        {"CopyData outside COPY", [] { return after_login(raw::message('d', "1\t2\n")); }, "alive"},
        {"CopyDone outside COPY", [] { return after_login(raw::message('c', "")); }, "alive"},
        {"unknown message type '!'", [] { return after_login(raw::message('!', "")); },
         "E:08P01 closed"},
        {"typed length 0", [] { return after_login("Q" + raw::int32(0)); }, "E:08P01 closed"},
        {"typed length over max_packet_size",
         [] { return after_login("Q" + raw::int32(max_packet_size + 1) + "SELECT 1"); },
         "E:08P01 closed"},
        {"typed length 2^31-1", [] { return after_login("Q" + raw::int32(0x7fffffffu)); },
         "E:08P01 closed"},
        // Malformed bodies pass through pgmarina, which parses only what it must; PostgreSQL
        // answers them with an ERROR (not FATAL) and the session goes on.
        {"Query without its terminating NUL",
         [] { return after_login(raw::message('Q', "SELECT 1")); }, "E:08P01 ZI alive"},
        {"Query with an embedded NUL",
         [] { return after_login(raw::message('Q', cstr("SELECT 1") + cstr("x"))); },
         "E:08P01 ZI alive"},
        {"Query with invalid UTF-8", [] { return after_login(raw::query("SELECT '\xff\xfe'")); },
         "E:22021 ZI alive"},
        {"Parse with a negative parameter count",
         [] {
             return after_login(raw::message('P', cstr("") + cstr("SELECT 1") + i16(0xffff)) +
                                sync);
         },
         "E:08P01 ZI alive"},
        {"Terminate inside a transaction", terminate_in_transaction, "clean"},
        {"a client that never reads 100 MB of rows",
         [rss_before_kb] { return never_reads(rss_before_kb); }, "bounded"},
    };
}

} // namespace

TEST_SUITE("integration.hostile") {
    TEST_CASE("hostile clients under pgbench load: each answered as PostgreSQL would, pgbench "
              "unharmed, no leak") {
        const auto init = support::run_command(pgbench("-i -s 1 -q", setup().cluster.port(0)));
        REQUIRE_MESSAGE(init.status == 0, init.output);
        // Fill the pool (pool_size clients) and warm pgmarina's allocator, then measure.
        const auto warm = support::run_command(
            pgbench("-n -S -c " + std::to_string(pool_size) + " -j 2 -t 200", setup().port));
        REQUIRE_MESSAGE(warm.status == 0, warm.output);
        std::this_thread::sleep_for(500ms);
        const pid_t pid = setup().pgmarina.pid();
        const long files_before = support::open_files(pid);
        const long rss_before = support::proc_status_kb(pid, "VmRSS");
        MESSAGE("baseline: " << files_before << " open files, VmRSS " << rss_before << " kB");

        std::atomic<bool> load_done{false};
        auto load = std::async(std::launch::async, [&load_done] {
            auto run = support::run_command(pgbench("-n -S -c 8 -j 2 -T 45", setup().port));
            load_done = true;
            return run;
        });
        std::this_thread::sleep_for(1s); // pgbench's clients are in

        const auto cases = catalogue(rss_before);
        for (const Case& c : cases) {
            CAPTURE(std::string(c.what));
            std::string got;
            try {
                got = c.run();
            } catch (const std::exception& e) {
                got = std::string("exception: ") + e.what();
            }
            CHECK_MESSAGE(got == c.expected, c.what << ": got \"" << got << "\"");
            REQUIRE_MESSAGE(setup().pgmarina.running(), "pgmarina died at: " << c.what);
        }
        MESSAGE(cases.size() << " hostile cases");
        CHECK_MESSAGE(!load_done, "pgbench ended before the hostile cases did: make -T longer");

        const auto bench = load.get();
        CHECK_MESSAGE(bench.status == 0, bench.output);
        std::smatch failed;
        REQUIRE_MESSAGE(std::regex_search(bench.output, failed,
                                          std::regex(R"(number of failed transactions: (\d+))")),
                        bench.output);
        CHECK(failed[1].str() == "0");
        std::smatch done;
        if (std::regex_search(bench.output, done,
                              std::regex(R"(number of transactions actually processed: (\d+))"))) {
            MESSAGE("pgbench during the hostile cases: " << done[1].str() << " transactions");
        }
        REQUIRE(setup().pgmarina.running());

        // Every hostile client is gone: the open files come back to the baseline, with no
        // tolerance. The baseline already has pool_size servers (the warm-up filled the pool)
        // and there is no reserve pool, so no case can leave more servers open; a server closed
        // for a broken client only lowers the count. The last sessions get a few seconds to
        // finish closing.
        const auto deadline = Clock::now() + 10s;
        long files_after = support::open_files(pid);
        while (files_after > files_before && Clock::now() < deadline) {
            std::this_thread::sleep_for(200ms);
            files_after = support::open_files(pid);
        }
        const long rss_after = support::proc_status_kb(pid, "VmRSS");
        MESSAGE("after: " << files_after << " open files, VmRSS " << rss_after << " kB, peak "
                          << support::proc_status_kb(pid, "VmHWM") << " kB");
        CHECK(files_after <= files_before);
        // Resident memory: glibc keeps some freed memory in its arenas, so the bound is not
        // zero; measured growth is under 1 MB. 16 MB over some 900 hostile connections would
        // catch any leak of 18 kB or more per connection (a session's 64 kB buffer, say).
        if (!setup().pgmarina.sanitized()) CHECK(rss_after - rss_before < 16 * 1024);
    }
}

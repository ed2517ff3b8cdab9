// TLS through a real pgmarina, toward clients and toward PostgreSQL: libpq clients with
// sslmode=require and verify-full, a PostgreSQL 17 style direct TLS ClientHello (ALPN
// "postgresql") made with OpenSSL itself since Debian 12's libpq predates it, client
// certificates for auth_type cert, a PostgreSQL with ssl=on behind pgmarina (pg_stat_ssl tells
// whether pgmarina's own connection is encrypted), refused plaintext and stuffed buffers, a
// RELOAD that swaps certificates under a connected client, and pgbench over TLS both ways.

#include "tests/support/command.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/pgmarina_process.hpp"
#include "tests/support/pq.hpp"
#include "tests/support/pq_async.hpp"
#include "tests/support/raw_client.hpp"
#include "tests/support/test_certificates.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using support::CertificateFiles;
using support::PgCluster;
using support::PgmarinaProcess;
using support::TestAuthority;
namespace fs = std::filesystem;
namespace pq = support::pq;

// Gives `path` to the postgres user, which PostgreSQL requires of its key file.
void give_to_postgres(const fs::path& path) {
    const passwd* postgres = ::getpwnam("postgres");
    REQUIRE(postgres != nullptr);
    REQUIRE(::chown(path.c_str(), postgres->pw_uid, postgres->pw_gid) == 0);
}

struct Setup {
    PgCluster cluster{{.replicas = 0}};
    fs::path dir = cluster.dir() / "tls";
    TestAuthority ca{dir, "test-ca"};
    TestAuthority other_ca{dir, "other-ca"};
    CertificateFiles proxy_cert = ca.server("pgmarina");
    CertificateFiles proxy_cert_other_ca = other_ca.server("pgmarina-other");
    CertificateFiles postgres_cert = ca.server("postgres");
    CertificateFiles postgres_cert_elsewhere = ca.server_named("postgres-elsewhere", "db.example");
    CertificateFiles scram_user_cert = ca.client("scram_user", "scram_user");
    CertificateFiles scram_user_cert_other_ca = other_ca.client("scram_user-other", "scram_user");

    Setup() {
        for (const auto* files : {&scram_user_cert, &scram_user_cert_other_ca})
            fs::permissions(files->key, fs::perms::owner_read | fs::perms::owner_write);
        enable_server_tls();
    }

    // ssl = on in PostgreSQL with a certificate of our CA; a reload suffices since PG 10.
    void enable_server_tls() {
        give_to_postgres(dir);
        for (const auto* files : {&postgres_cert, &postgres_cert_elsewhere}) {
            give_to_postgres(files->cert);
            give_to_postgres(files->key);
            fs::permissions(files->key, fs::perms::owner_read | fs::perms::owner_write);
        }
        use_server_certificate(postgres_cert);
    }

    // Makes PostgreSQL present `files` to new connections.
    void use_server_certificate(const CertificateFiles& files) {
        auto admin = pq::Connection::connect(cluster.conninfo(0));
        REQUIRE_MESSAGE(admin.ok(), admin.error_message());
        for (const std::string& sql :
             {"ALTER SYSTEM SET ssl_cert_file = '" + files.cert.string() + "'",
              "ALTER SYSTEM SET ssl_key_file = '" + files.key.string() + "'",
              std::string("ALTER SYSTEM SET ssl = on"), std::string("SELECT pg_reload_conf()")}) {
            auto result = admin.exec(sql);
            REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
        }
        // The reload is asynchronous: wait until a new connection sees the file in force.
        for (int attempt = 0; attempt < 100; ++attempt) {
            auto probe = pq::Connection::connect(cluster.conninfo(0) + " sslmode=require");
            if (probe.ok() && probe.exec("SHOW ssl_cert_file").value(0, 0) == files.cert.string())
                return;
            std::this_thread::sleep_for(50ms);
        }
        FAIL("PostgreSQL did not take " << files.cert);
    }
};

Setup& setup() {
    static Setup instance;
    return instance;
}

std::string quoted(const fs::path& path) {
    return "\"" + path.string() + "\"";
}

// A pgmarina in front of the cluster's primary, with `tls_settings` added to [pgmarina].
std::string config_for(std::uint16_t port, const std::string& tls_settings) {
    const auto& cluster = setup().cluster;
    return "[pgmarina]\n"
           "listen = [\"127.0.0.1:" +
           std::to_string(port) +
           "\"]\n"
           "unix_socket_dir = \"\"\n"
           "workers = 2\n"
           "default_pool_size = 4\n"
           "admin_users = [\"scram_user\"]\n" +
           tls_settings +
           "\n[databases.app]\nhosts = [\"127.0.0.1:" + std::to_string(cluster.port(0)) +
           "\"]\n[users.scram_user]\npassword = \"" + cluster.password("scram_user") +
           "\"\n[users.md5_user]\npassword = \"" + cluster.password("md5_user") + "\"\n";
}

// TLS toward clients with pgmarina's certificate of `ca`'s, and `more` settings.
std::string client_tls(std::string_view mode, const CertificateFiles& certificate,
                       const std::string& more = "") {
    return "client_tls_sslmode = \"" + std::string(mode) +
           "\"\n"
           "client_tls_cert_file = " +
           quoted(certificate.cert) + "\nclient_tls_key_file = " + quoted(certificate.key) + "\n" +
           more;
}

std::string server_tls(std::string_view mode, const fs::path& ca_file) {
    return "server_tls_sslmode = \"" + std::string(mode) +
           "\"\nserver_tls_ca_file = " + quoted(ca_file) + "\n";
}

struct Proxy {
    explicit Proxy(const std::string& tls_settings)
        : port(PgmarinaProcess::free_port()), process(config_for(port, tls_settings), port) {}

    // A libpq connection as `user` to app, with extra conninfo (later keywords win).
    pq::Connection connect(std::string_view user, const std::string& extra,
                           std::string_view dbname = "app") const {
        return pq::Connection::connect(
            process.conninfo(user, setup().cluster.password(user), dbname) + " " + extra);
    }

    std::uint16_t port;
    PgmarinaProcess process;
};

#define PGMARINA_LOG_ON_FAILURE(proxy)                                                             \
    INFO("end of pgmarina's log:" << support::log_tail((proxy).process))

std::string verify_full(const fs::path& root) {
    return "host=localhost sslmode=verify-full sslrootcert=" + root.string();
}

std::string with_certificate(const CertificateFiles& files) {
    return "sslmode=require sslcert=" + files.cert.string() + " sslkey=" + files.key.string();
}

std::string one_value(pq::Connection& conn, const std::string& sql) {
    auto result = conn.exec(sql);
    REQUIRE_MESSAGE(result.ok(), sql << ": " << result.error_message());
    REQUIRE(result.ntuples() == 1);
    return result.value(0, 0);
}

// Whether the server connection this client's transaction runs on is encrypted, as PostgreSQL
// itself sees it.
std::string server_side_ssl(pq::Connection& conn) {
    return one_value(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
}

// A TLS connection made with OpenSSL directly: PostgreSQL 17's sslnegotiation=direct, which
// sends a ClientHello as its very first bytes. Returns the type of the first message pgmarina
// answers a StartupMessage with, or nullopt when the handshake fails or pgmarina closes.
std::optional<char> direct_tls_first_reply(std::uint16_t port, const unsigned char* alpn,
                                           unsigned alpn_length) {
    // OpenSSL writes with write(2): a closed peer must be an error, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context(SSL_CTX_new(TLS_client_method()),
                                                              SSL_CTX_free);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(context.get()), SSL_free);
    if (alpn != nullptr) SSL_set_alpn_protos(ssl.get(), alpn, alpn_length);
    SSL_set_fd(ssl.get(), fd);
    std::optional<char> reply;
    if (SSL_connect(ssl.get()) == 1) {
        const std::string startup =
            support::raw::startup_message({{"user", "scram_user"}, {"database", "app"}});
        char type = 0;
        if (SSL_write(ssl.get(), startup.data(), static_cast<int>(startup.size())) > 0 &&
            SSL_read(ssl.get(), &type, 1) == 1) {
            reply = type;
        }
    }
    ::close(fd);
    return reply;
}

} // namespace

TEST_SUITE("tls") {
    TEST_CASE("libpq with sslmode=require and verify-full; pgmarina encrypts toward PostgreSQL") {
        Proxy proxy(client_tls("require", setup().proxy_cert) +
                    server_tls("verify-full", setup().ca.cert()));
        PGMARINA_LOG_ON_FAILURE(proxy);

        auto required = proxy.connect("scram_user", "sslmode=require");
        REQUIRE_MESSAGE(required.ok(), required.error_message());
        CHECK(PQsslInUse(required.native()) == 1);
        CHECK(server_side_ssl(required) == "t");

        auto verified = proxy.connect("scram_user", verify_full(setup().ca.cert()));
        REQUIRE_MESSAGE(verified.ok(), verified.error_message());
        CHECK(one_value(verified, "SELECT 1") == "1");

        // A client that trusts another CA refuses pgmarina's certificate.
        auto distrusting = proxy.connect("scram_user", verify_full(setup().other_ca.cert()));
        CHECK_FALSE(distrusting.ok());
        CHECK(distrusting.error_message().find("certificate verify failed") != std::string::npos);

        // require: no plaintext login at all.
        auto plain = proxy.connect("scram_user", "sslmode=disable");
        CHECK_FALSE(plain.ok());
        CHECK(plain.sqlstate() == "28000");
        CHECK(plain.error_message().find("SSL required") != std::string::npos);

        // SHOW CLIENTS and SHOW SERVERS name the TLS version and cipher of encrypted connections.
        auto console = proxy.connect("scram_user", "sslmode=require", "pgbouncer");
        REQUIRE_MESSAGE(console.ok(), console.error_message());
        auto clients = console.exec("SHOW CLIENTS");
        REQUIRE(clients.ok());
        REQUIRE(clients.ntuples() >= 1);
        for (int row = 0; row < clients.ntuples(); ++row)
            CHECK(clients.value(row, "tls").starts_with("TLSv1."));
        auto servers = console.exec("SHOW SERVERS");
        REQUIRE(servers.ok());
        REQUIRE(servers.ntuples() >= 1);
        for (int row = 0; row < servers.ntuples(); ++row)
            CHECK(servers.value(row, "tls").starts_with("TLSv1."));
    }

    TEST_CASE("prefer serves plaintext and TLS clients alike; disable toward the server") {
        Proxy proxy(client_tls("prefer", setup().proxy_cert) +
                    "server_tls_sslmode = \"disable\"\n");
        PGMARINA_LOG_ON_FAILURE(proxy);
        auto plain = proxy.connect("scram_user", "sslmode=disable");
        REQUIRE_MESSAGE(plain.ok(), plain.error_message());
        CHECK(PQsslInUse(plain.native()) == 0);
        auto encrypted = proxy.connect("scram_user", "sslmode=require");
        REQUIRE_MESSAGE(encrypted.ok(), encrypted.error_message());
        CHECK(PQsslInUse(encrypted.native()) == 1);
        CHECK(server_side_ssl(encrypted) == "f");
    }

    TEST_CASE("server_tls_sslmode verify-full refuses a server certificate of another CA") {
        Proxy proxy(server_tls("verify-full", setup().other_ca.cert()));
        PGMARINA_LOG_ON_FAILURE(proxy);
        auto conn = proxy.connect("scram_user", "sslmode=disable");
        CHECK_FALSE(conn.ok());
        CHECK(conn.sqlstate() == "08006");
        CHECK(conn.error_message().find("certificate verify failed") != std::string::npos);
    }

    TEST_CASE("server_tls_sslmode verify-full checks the host name, verify-ca does not") {
        setup().use_server_certificate(setup().postgres_cert_elsewhere);
        {
            Proxy full(server_tls("verify-full", setup().ca.cert()));
            PGMARINA_LOG_ON_FAILURE(full);
            auto refused = full.connect("scram_user", "sslmode=disable");
            CHECK_FALSE(refused.ok());
            CHECK(refused.sqlstate() == "08006");
            CHECK(refused.error_message().find("certificate verify failed") != std::string::npos);

            Proxy chain_only(server_tls("verify-ca", setup().ca.cert()));
            PGMARINA_LOG_ON_FAILURE(chain_only);
            auto accepted = chain_only.connect("scram_user", "sslmode=disable");
            REQUIRE_MESSAGE(accepted.ok(), accepted.error_message());
            CHECK(server_side_ssl(accepted) == "t");
        }
        setup().use_server_certificate(setup().postgres_cert);
    }

    TEST_CASE("direct TLS needs ALPN postgresql") {
        Proxy proxy(client_tls("require", setup().proxy_cert));
        PGMARINA_LOG_ON_FAILURE(proxy);
        static constexpr unsigned char postgresql[] = "\x0apostgresql";
        static constexpr unsigned char http[] = "\x08http/1.1";
        // 'R': an authentication request, the login goes on inside TLS.
        CHECK(direct_tls_first_reply(proxy.port, postgresql, sizeof postgresql - 1) == 'R');
        CHECK(direct_tls_first_reply(proxy.port, nullptr, 0) == std::nullopt);
        CHECK(direct_tls_first_reply(proxy.port, http, sizeof http - 1) == std::nullopt);
        // pgmarina is still there for everyone else.
        auto conn = proxy.connect("scram_user", "sslmode=require");
        CHECK_MESSAGE(conn.ok(), conn.error_message());
    }

    TEST_CASE("bytes sent behind an SSLRequest are never read") {
        Proxy proxy(client_tls("prefer", setup().proxy_cert));
        PGMARINA_LOG_ON_FAILURE(proxy);
        support::raw::Client client(proxy.port);
        // SSLRequest: length 8, code 80877103; then a StartupMessage in the same packet.
        const std::string ssl_request = support::raw::int32(8) + support::raw::int32(80877103);
        REQUIRE(client.send(ssl_request + support::raw::startup_message(
                                              {{"user", "scram_user"}, {"database", "app"}})));
        const auto replies = client.read_until_closed();
        CHECK(replies.empty());
        CHECK(client.closed());
        CHECK(proxy.process.log().find("received unencrypted data after SSL request") !=
              std::string::npos);
    }

    TEST_CASE("auth_type cert: the verified certificate's CommonName is the user") {
        Proxy proxy("auth_type = \"cert\"\n" +
                    client_tls("verify-full", setup().proxy_cert,
                               "client_tls_ca_file = " + quoted(setup().ca.cert()) + "\n"));
        PGMARINA_LOG_ON_FAILURE(proxy);

        auto alice = proxy.connect("scram_user", with_certificate(setup().scram_user_cert));
        REQUIRE_MESSAGE(alice.ok(), alice.error_message());
        CHECK(one_value(alice, "SELECT current_user") == "scram_user");

        auto impostor = proxy.connect("md5_user", with_certificate(setup().scram_user_cert));
        CHECK_FALSE(impostor.ok());
        CHECK(impostor.sqlstate() == "28000");
        CHECK(impostor.error_message().find(
                  "certificate authentication failed for user \"md5_user\"") != std::string::npos);

        // verify-full: no certificate, or one of another CA, ends the handshake.
        auto anonymous = proxy.connect("scram_user", "sslmode=require");
        CHECK_FALSE(anonymous.ok());
        auto foreign =
            proxy.connect("scram_user", with_certificate(setup().scram_user_cert_other_ca));
        CHECK_FALSE(foreign.ok());
        CHECK(proxy.process.running());
    }

    TEST_CASE("auth_type hba: hostssl lines see TLS clients, host lines the rest") {
        const fs::path hba = setup().dir / "pg_hba.conf";
        std::ofstream(hba) << "hostssl app scram_user 127.0.0.1/32 cert\n"
                              "hostnossl app scram_user 127.0.0.1/32 scram-sha-256\n"
                              "hostssl app md5_user 127.0.0.1/32 scram-sha-256\n";
        Proxy proxy("auth_type = \"hba\"\nauth_hba_file = " + quoted(hba) + "\n" +
                    client_tls("prefer", setup().proxy_cert,
                               "client_tls_ca_file = " + quoted(setup().ca.cert()) + "\n"));
        PGMARINA_LOG_ON_FAILURE(proxy);

        // Over TLS scram_user is its certificate: no password needed, none asked for.
        auto certified = proxy.connect("scram_user", with_certificate(setup().scram_user_cert) +
                                                         " password=wrong");
        CHECK_MESSAGE(certified.ok(), certified.error_message());
        // In plaintext it is its password.
        auto plain = proxy.connect("scram_user", "sslmode=disable");
        CHECK_MESSAGE(plain.ok(), plain.error_message());
        // md5_user may only come over TLS.
        auto md5_plain = proxy.connect("md5_user", "sslmode=disable");
        CHECK_FALSE(md5_plain.ok());
        CHECK(md5_plain.sqlstate() == "28000");
        auto md5_tls = proxy.connect("md5_user", "sslmode=require");
        CHECK_MESSAGE(md5_tls.ok(), md5_tls.error_message());
    }

    TEST_CASE("RELOAD puts renewed certificates in force; connected clients stay") {
        const fs::path dir = setup().dir / "reload";
        fs::create_directories(dir);
        const CertificateFiles live{dir / "live.crt", dir / "live.key"};
        fs::copy_file(setup().proxy_cert.cert, live.cert, fs::copy_options::overwrite_existing);
        fs::copy_file(setup().proxy_cert.key, live.key, fs::copy_options::overwrite_existing);
        Proxy proxy(client_tls("require", live));
        PGMARINA_LOG_ON_FAILURE(proxy);

        auto before = proxy.connect("scram_user", verify_full(setup().ca.cert()));
        REQUIRE_MESSAGE(before.ok(), before.error_message());

        fs::copy_file(setup().proxy_cert_other_ca.cert, live.cert,
                      fs::copy_options::overwrite_existing);
        fs::copy_file(setup().proxy_cert_other_ca.key, live.key,
                      fs::copy_options::overwrite_existing);
        auto console = proxy.connect("scram_user", "sslmode=require", "pgbouncer");
        REQUIRE_MESSAGE(console.ok(), console.error_message());
        auto reloaded = console.exec("RELOAD");
        REQUIRE_MESSAGE(reloaded.ok(), reloaded.error_message());

        auto after = proxy.connect("scram_user", verify_full(setup().other_ca.cert()));
        CHECK_MESSAGE(after.ok(), after.error_message());
        auto stale_trust = proxy.connect("scram_user", verify_full(setup().ca.cert()));
        CHECK_FALSE(stale_trust.ok());
        // The client connected before the reload keeps its session.
        CHECK(one_value(before, "SELECT 1") == "1");

        // A certificate file that is not one: RELOAD refuses and the old contexts stay.
        std::ofstream(live.cert) << "not a certificate\n";
        auto refused = console.exec("RELOAD");
        CHECK_FALSE(refused.ok());
        CHECK(refused.error_message().find("client_tls_cert_file") != std::string::npos);
        auto still = proxy.connect("scram_user", verify_full(setup().other_ca.cert()));
        CHECK_MESSAGE(still.ok(), still.error_message());
    }

    TEST_CASE("pgbench over TLS both ways, servers moving between two workers") {
        Proxy proxy(client_tls("require", setup().proxy_cert) +
                    server_tls("verify-full", setup().ca.cert()));
        PGMARINA_LOG_ON_FAILURE(proxy);
        const auto& cluster = setup().cluster;
        const std::string password = "PGPASSWORD=" + cluster.password("scram_user");
        const auto init =
            support::run_command(password + " pgbench -i -s 1 -q -h 127.0.0.1 -p " +
                                 std::to_string(cluster.port(0)) + " -U scram_user app");
        REQUIRE_MESSAGE(init.status == 0, init.output);
        for (const char* mode : {"simple", "extended"}) {
            CAPTURE(mode);
            const auto run = support::run_command(
                password + " PGSSLMODE=require pgbench -n -S -c 20 -j 2 -T 3 -M " + mode +
                " -h 127.0.0.1 -p " + std::to_string(proxy.port) + " -U scram_user app");
            INFO(run.output);
            CHECK(run.status == 0);
            std::smatch processed;
            REQUIRE(std::regex_search(
                run.output, processed,
                std::regex(R"(number of transactions actually processed: (\d+))")));
            CHECK(std::stol(processed[1].str()) > 100);
            CHECK(run.output.find("number of failed transactions: 0 ") != std::string::npos);
        }
    }
}

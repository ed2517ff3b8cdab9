// auth_type = "hba": the client's authentication method chosen per connection by an
// auth_hba_file in pg_hba.conf syntax, as PgBouncer's auth_type=hba does (PostgreSQL docs, "The
// pg_hba.conf File").
//
// Each line is `TYPE DATABASE USER [ADDRESS [NETMASK]] METHOD`; the first line whose type,
// database, user and address all match the connection decides, and a connection no line matches
// is refused. What we read as PostgreSQL does:
// - '#' starts a comment outside quotes; blank lines are skipped; fields are separated by spaces
//   or tabs; a field may be double-quoted, `""` inside quotes standing for `"`, and a quoted
//   keyword is a plain name ("all" is a database called all).
// - DATABASE and USER are comma-separated lists. DATABASE keywords: `all`, `sameuser` (the
//   database named like the user), `replication` (matches replication connections, which
//   pgmarina never has, so it matches nothing). USER keyword: `all`. Names are case-sensitive.
// - TYPE: `local` (the Unix socket), `host` (TCP), `hostssl` (TCP with TLS), `hostnossl` (TCP
//   without TLS).
// - ADDRESS (host types only): `all`, `a.b.c.d/n`, an IPv6 address with `/n`, or an address
//   without `/n` followed by a NETMASK column of the same family.
// - METHOD: trust, reject, md5 (SCRAM when the secret is a SCRAM verifier, as auth_type md5),
//   password (auth_type plain), scram-sha-256, cert (hostssl lines only, as PostgreSQL).
//
// What we refuse with an error naming the line, rather than guess, because each would let in or
// shut out clients the file's author did not mean to: host names and `samehost`/`samenet` (we do
// not resolve names or read interface lists), `samerole`/`samegroup` and `+group` (we do not know
// role membership), `@file` inclusion, `/regex` names (PostgreSQL 16; PostgreSQL 15 reads them as
// plain names, so their meaning depends on the server version), the hostgssenc/hostnogssenc
// types and every method PgBouncer does not have or that needs what we lack: `peer` (the OS user
// of a Unix-socket client), ident, ldap, pam, radius, gss, sspi, bsd. Options after the method
// (`clientcert=verify-full`, `map=...`) are refused too: they tighten who may log in, so
// ignoring them would let in clients the line means to keep out. A netmask must be contiguous
// (PostgreSQL does not check; a mask with holes is almost always a typo).
//
// An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, from a listener on "::") is matched as the IPv4
// address it carries: it is an IPv4 client, and an IPv4 line is what an operator writes for it.
#pragma once

#include "proxy/config.hpp"

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy {

// What the auth_hba_file is matched against: the facts of one client connection.
struct HbaConnection {
    bool local = false; // came over the Unix socket
    bool tls = false;   // the client's connection is encrypted with TLS
    // The TCP peer; nullopt for the Unix socket.
    std::optional<boost::asio::ip::address> address;
    std::string_view database;
    std::string_view user;
};

// One line of the file, parsed.
struct HbaRule {
    enum class Type { local, host, hostssl, hostnossl };

    // An IP network: the address bits under `mask` (network byte order, both 4 bytes long for
    // IPv4 and 16 for IPv6).
    struct Network {
        bool v6 = false;
        std::array<unsigned char, 16> address{};
        std::array<unsigned char, 16> mask{};
    };

    // A DATABASE or USER column.
    struct Names {
        bool all = false;               // `all`
        bool same_user = false;         // `sameuser` (DATABASE only)
        std::vector<std::string> names; // plain names, `replication` left out
    };

    std::uint32_t line = 0;
    Type type = Type::host;
    Names databases;
    Names users;
    std::optional<Network> network; // nullopt: `all`, or a local line
    std::optional<AuthType> method; // nullopt: `reject`

    [[nodiscard]] bool matches(const HbaConnection& connection) const;
};

// What the file decides for a connection.
struct HbaDecision {
    std::optional<AuthType> method; // nullopt: refuse the connection
    std::uint32_t line = 0;         // the line that matched; 0 when none did
};

// The rules of an auth_hba_file, in file order.
class HbaRules {
public:
    HbaRules() = default;
    explicit HbaRules(std::vector<HbaRule> rules) : rules_(std::move(rules)) {}

    [[nodiscard]] HbaDecision decide(const HbaConnection& connection) const;
    [[nodiscard]] const std::vector<HbaRule>& rules() const noexcept { return rules_; }

private:
    std::vector<HbaRule> rules_;
};

// PostgreSQL's FATAL message for a refused connection: `pg_hba.conf rejects connection for host
// "10.0.0.5", user "u", database "d", no encryption` for a `reject` line, `no pg_hba.conf entry
// for ...` when no line matched. The host is "[local]" for the Unix socket.
[[nodiscard]] std::string hba_refusal(const HbaConnection& connection, const HbaDecision& decision);

// The outcome of reading an auth_hba_file: the rules, or every problem found (never both).
class [[nodiscard]] HbaFileResult {
public:
    explicit HbaFileResult(HbaRules rules);
    explicit HbaFileResult(std::vector<ConfigError> errors);

    [[nodiscard]] bool ok() const noexcept { return errors_.empty(); }
    explicit operator bool() const noexcept { return ok(); }

    // Precondition: ok(). May be empty: such a file refuses every connection.
    [[nodiscard]] const HbaRules& rules() const noexcept { return rules_; }
    // Empty when ok(). In line order.
    [[nodiscard]] const std::vector<ConfigError>& errors() const noexcept { return errors_; }

private:
    HbaRules rules_;
    std::vector<ConfigError> errors_;
};

// Parses pg_hba.conf text; `origin` names it in error messages ("origin:line:column: ...", the
// column of the field at fault). Lines end in "\n" or "\r\n". Never throws on bad input.
[[nodiscard]] HbaFileResult parse_hba(std::string_view text, std::string_view origin);

// Reads and parses the file at `path`.
[[nodiscard]] HbaFileResult load_hba_file(const std::filesystem::path& path);

} // namespace proxy

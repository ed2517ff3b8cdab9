// auth_user + auth_query, as in PgBouncer: the secret of a client user that is neither in
// [users] nor in the auth_file is looked up in PostgreSQL itself, so operators do not copy
// passwords into pgmarina.
//
// How a lookup goes:
// - The database's auth_user (its [databases.<name>] auth_user, else [pgmarina] auth_user) logs
//   in to the database's primary host, to auth_dbname when set, else to the database's dbname,
//   with its own secret from [users] or the auth_file. That login happens without any client, so
//   auth_user needs a plain or md5 secret (or a server that trusts it): a SCRAM verifier alone
//   cannot answer a SCRAM challenge (server_login.hpp).
// - auth_query runs there with the client's user name as its text parameter $1, through the
//   extended protocol (Parse, Bind, Execute, Sync), never spliced into the SQL. Its first row's
//   second column is the secret: a SCRAM verifier (PostgreSQL's default), an md5 hash or a plain
//   password. No row, more than one row, a NULL or an empty secret (an expired role under the
//   default query, a role without password) all mean "no secret".
// - The client's exchange then runs against that secret, and its pool logs in to servers with
//   it: with a SCRAM verifier through the keys the client revealed (SCRAM pass-through), with an
//   md5 hash by answering the server's md5 challenge. No plaintext password is stored anywhere.
//
// What the client sees when there is no answer:
// - no secret, and also an ErrorResponse from the query or from auth_user's login (a
//   permission denied, a wrong auth_user password, a missing function): the same exchange and
//   the same 28P01 "password authentication failed for user" as for a wrong password, so that a
//   login attempt does not tell which users exist. The error is logged, without any secret.
// - the server cannot be reached (connection refused, server_connect_timeout, a connection lost
//   mid-query): 08006, as when a pool cannot reach its server; a client cannot log in then
//   anyway, and telling it so beats a misleading "wrong password".
// - no answer within query_wait_timeout (queued behind other lookups, slow query): 08P01
//   "query_wait_timeout", PgBouncer's words for a client that waited too long for a server.
//
// Answers are cached per (database, auth_user): secrets for `positive_ttl`, "no secret" for
// `negative_ttl` (PgBouncer runs the query at every login and has no such setting, so these are
// constants). A storm of logins of one user then costs one query, and a changed password or
// VALID UNTIL takes effect within positive_ttl. Errors are not cached, so a fixed grant works at
// once. Concurrent lookups of one user share one query.
#pragma once

#include "pool/ids.hpp"
#include "proxy/asio.hpp"
#include "proxy/auth_file.hpp"
#include "proxy/config.hpp"
#include "proxy/server_login.hpp"
#include "proxy/tls_context.hpp"
#include "wire/frame.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy {

// How long an answer of auth_query is believed.
inline constexpr std::chrono::seconds positive_ttl{30};
// Short, so that a role created just now can log in soon; long enough that a client retrying a
// wrong user name in a loop costs one query every few seconds.
inline constexpr std::chrono::seconds negative_ttl{5};
// Answers kept per (database, auth_user). Unauthenticated clients choose the user names, so the
// cache must not grow with them: past this, expired entries are dropped, and if none is, the
// new answer is simply not cached.
inline constexpr std::size_t max_cached_answers = 10000;

// Where and how the unknown users of one database are looked up.
struct AuthTarget {
    std::string auth_user;
    Endpoint host;
    std::string dbname;                // auth_dbname, else the database's dbname
    std::optional<std::string> secret; // auth_user's own, from [users] or the auth_file
    std::string query;
    Settings settings; // connect and query timeouts, socket options

    friend bool operator==(const AuthTarget&, const AuthTarget&) = default;
};

// The target for clients of `database`, or std::nullopt when it has no auth_user (or does not
// exist).
[[nodiscard]] std::optional<AuthTarget>
auth_target(const Config& config, const AuthUsers& auth_users, std::string_view database);

// auth_query's answers by user name, each until it expires.
//
// Thread safety: none; AuthQueries guards each cache with its source's lock.
class SecretCache {
public:
    using Clock = std::chrono::steady_clock;

    // Outer std::nullopt: nothing known (never asked, or expired). Inner: the answer, which
    // may be "no secret".
    [[nodiscard]] std::optional<std::optional<std::string>> find(std::string_view user,
                                                                 Clock::time_point now) const;
    // Keeps `secret` (std::nullopt: no secret) for positive_ttl or negative_ttl from `now`.
    void store(std::string_view user, std::optional<std::string> secret, Clock::time_point now);
    [[nodiscard]] std::size_t size() const noexcept { return answers_.size(); }

private:
    struct Answer {
        std::optional<std::string> secret;
        Clock::time_point expires;
    };
    std::map<std::string, Answer, std::less<>> answers_;
};

// Parse, Bind (`user` as text parameter $1), Execute and Sync of `query` on the unnamed
// statement and portal.
[[nodiscard]] std::vector<std::byte> encode_auth_query(std::string_view query,
                                                       std::string_view user);

// Reads the server's replies to encode_auth_query(), one frame at a time, up to ReadyForQuery.
class AuthQueryReply {
public:
    enum class Progress {
        more,   // feed the next frame
        done,   // ReadyForQuery came: answer() holds the outcome, the connection can be reused
        broken, // not a reply we can make sense of: problem() says why; close the connection
    };

    [[nodiscard]] Progress on_frame(const wire::Frame& frame);
    // After Progress::done: the secret (std::nullopt for none), or why the query gave none (the
    // server's ErrorResponse, too many rows, too few columns).
    [[nodiscard]] const boost::system::result<std::optional<std::string>, std::string>&
    answer() const noexcept {
        return answer_;
    }
    [[nodiscard]] const std::string& problem() const noexcept { return problem_; }

private:
    Progress broken(std::string why);

    boost::system::result<std::optional<std::string>, std::string> answer_{std::nullopt};
    int rows_ = 0;
    std::string problem_;
};

// A client's secret, from the configuration or from auth_query: std::nullopt for a user nobody
// knows (who is then refused exactly as a wrong password is), or the error the client is sent
// instead when auth_query could not be asked.
using SecretLookup = boost::system::result<std::optional<std::string>, ServerLoginError>;

// The auth_query connections and caches of the process, one per (database, auth_user).
//
// Thread safety: find_secret() and reconfigure() may be called from any thread. Each source has
// one server connection, used by one query at a time: a coroutine spawned on the executor of the
// session that found it idle runs the queued lookups one after another, moving the connection to
// its own io_context first (as pools hand servers between workers). Lookups take about a
// millisecond, so serializing them costs less than a connection per worker would in server
// connections; the cache makes repeated logins free anyway.
class AuthQueries {
public:
    AuthQueries(std::shared_ptr<pool::ServerIds> ids, const CurrentTls& tls);
    AuthQueries(const AuthQueries&) = delete;
    AuthQueries& operator=(const AuthQueries&) = delete;
    ~AuthQueries();

    // The secret `user` logs in to `database` with: find_secret() of the configuration first,
    // then, if the database has an auth_user, auth_query's answer. The console databases
    // never use auth_query. Waits at most query_wait_timeout for the answer (0: as long as the
    // caller's client_login_timeout lets it).
    [[nodiscard]] asio::awaitable<SecretLookup> find_secret(const Config& config,
                                                            const AuthUsers& auth_users,
                                                            std::string_view database,
                                                            std::string_view user);

    // RELOAD and SET: a source whose target changed (or whose database is gone) is dropped with
    // its cache and connection; a lookup already running on it finishes there.
    void reconfigure(const Config& config, const AuthUsers& auth_users);

private:
    class Source;

    // The source serving `database`'s unknown users; nullptr when auth_query does not apply.
    [[nodiscard]] std::shared_ptr<Source>
    source_for(const Config& config, const AuthUsers& auth_users, std::string_view database);

    std::shared_ptr<pool::ServerIds> ids_;
    const CurrentTls& tls_;
    std::mutex mutex_;
    // By (database, auth_user).
    std::map<std::pair<std::string, std::string>, std::shared_ptr<Source>, std::less<>> sources_;
};

} // namespace proxy

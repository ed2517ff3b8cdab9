// One connection to PostgreSQL that a pool lends to clients (design.md: pool::ServerConn).
//
// Thread safety: none. A connection is touched by one thread at a time, and the hand-over
// between threads goes through its ServerPool's lock: parked in the pool (nobody does I/O on
// it), lent to one client session, or running a check, reset or login coroutine.
#pragma once

#include "pool/ids.hpp"
#include "pool/statement_cache.hpp"
#include "proxy/asio.hpp"
#include "proxy/config.hpp"
#include "proxy/parameter_sync.hpp"
#include "proxy/server_login.hpp"
#include "proxy/stream.hpp"
#include "proxy/tls_context.hpp"
#include "wire/framer.hpp"
#include "wire/response_tracker.hpp"

#include <memory>
#include <string>

namespace proxy {

class ServerConn {
public:
    // `max_prepared_statements` bounds statements(); 0 turns the cache off for this connection.
    ServerConn(pool::ServerId id, std::string name, ServerStream stream, ServerWelcome welcome,
               std::size_t max_message_size, std::size_t max_prepared_statements);
    ServerConn(const ServerConn&) = delete;
    ServerConn& operator=(const ServerConn&) = delete;
    ~ServerConn();

    [[nodiscard]] pool::ServerId id() const noexcept { return id_; }
    // "S-4 app/alice@127.0.0.1:5432", as SHOW SERVERS and log lines name it.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    // Reads and writes go through the stream (TLS or not); waits go to its socket.
    [[nodiscard]] ServerStream& stream() noexcept { return stream_; }
    [[nodiscard]] const ServerStream& stream() const noexcept { return stream_; }
    [[nodiscard]] wire::Framer& framer() noexcept { return framer_; }
    [[nodiscard]] wire::ResponseTracker& tracker() noexcept { return tracker_; }
    // The tracked parameters as the server last reported them.
    [[nodiscard]] ParameterSet& parameters() noexcept { return parameters_; }
    [[nodiscard]] const ServerWelcome& welcome() const noexcept { return welcome_; }
    // The PGMARINA_<n> statements prepared on this connection (reference.md 3 step 4). It
    // travels with the connection from client to client; a reset that runs DISCARD ALL or
    // DEALLOCATE ALL empties it.
    [[nodiscard]] pool::ServerStatements& statements() noexcept { return statements_; }
    [[nodiscard]] const pool::ServerStatements& statements() const noexcept { return statements_; }
    // Where a CancelRequest for this connection goes.
    [[nodiscard]] const tcp::endpoint& endpoint() const noexcept { return endpoint_; }
    // Our end of the connection: SHOW SERVERS local_addr, local_port.
    [[nodiscard]] const tcp::endpoint& local_endpoint() const noexcept { return local_endpoint_; }
    // As the server last reported it; "" before it has.
    [[nodiscard]] std::string application_name() const {
        return std::string(parameters_.get("application_name").value_or(""));
    }

    // Moves the socket to `executor` (another worker's io_context) unless it is there already.
    // Precondition: no operation is pending on the socket.
    void bind_to(const asio::any_io_executor& executor);

    // False when the server closed the connection or sent something while nobody asked
    // (a FATAL after pg_terminate_backend, a notification for a LISTEN left behind): such a
    // connection must not serve a client. One non-blocking peek, no waiting.
    [[nodiscard]] bool looks_alive();

    // Sends Terminate if the socket takes it at once, then closes. Never blocks.
    void terminate() noexcept;

private:
    pool::ServerId id_;
    std::string name_;
    ServerStream stream_;
    tcp::endpoint endpoint_;
    tcp::endpoint local_endpoint_;
    wire::Framer framer_;
    wire::ResponseTracker tracker_;
    ParameterSet parameters_;
    ServerWelcome welcome_;
    pool::ServerStatements statements_;
};

// Connects to `host` and logs in within server_connect_timeout, with the socket options and
// message size limit of `settings`, over TLS as `tls` says (server_tls_sslmode).
[[nodiscard]] asio::awaitable<boost::system::result<std::unique_ptr<ServerConn>, ServerLoginError>>
connect_server(pool::ServerId id, const std::string& pool_name, const Endpoint& host,
               const ServerCredentials& credentials, const Settings& settings,
               const TlsContexts& tls);

// The CommandComplete tags of the commands that drop every prepared statement of a session,
// the client's and ours alike (reference.md 3 step 8).
[[nodiscard]] bool deallocates_all(std::string_view command_tag);

// Runs one simple query on a connection nobody else uses and reads up to its ReadyForQuery,
// learning ParameterStatus reports on the way. True when it ended without error and outside a
// transaction block: server_reset_query and server_check_query.
[[nodiscard]] asio::awaitable<bool> run_maintenance_query(ServerConn& server, std::string_view sql);

} // namespace proxy

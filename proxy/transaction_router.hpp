// Where one client's transactions run: routing::classify() on the first message of each
// transaction, routing::route() over the database's topology, and the pool of the host chosen
// (design.md: "picks primary or a replica for each transaction").
//
// Read-your-writes (read_consistency = "lsn"): when a transaction that may have written ends,
// the router notes the time. Its reads then go to replicas whose replayed WAL position is at
// least what the primary reported in a probe sent after that time: such a probe saw every
// commit acknowledged before it. Until a probe has been sent since, reads go to the primary.
// This never reads stale data and costs no round trip; its price is that a read within one
// health_check_interval of a write runs on the primary.
//
// Not thread-safe: it belongs to one session.
#pragma once

#include "proxy/metrics.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_pool.hpp"
#include "routing/classify.hpp"
#include "routing/router.hpp"
#include "wire/message.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace proxy {

class PreparedStatements;

// How a client's transaction may be classified: what the session knows about the client.
struct ClientTraits {
    bool default_transaction_read_only = false;
    bool standard_conforming_strings = true;
};

// Whether a transaction that starts with `first` may run on a replica. Query and Parse carry
// the text; a Bind of a named statement is judged by the statement's text (in `prepared`); any
// other first message goes to the primary. Pure apart from the lookup in `prepared`.
[[nodiscard]] routing::Classification
classify_transaction(const wire::Frame& first, const ClientTraits& client,
                     std::span<const std::string> read_only_functions,
                     const PreparedStatements* prepared);

class TransactionRouter {
public:
    TransactionRouter(Runtime& runtime, std::string database, std::string client_user,
                      const DatabaseConfig& config, Metrics::DatabaseMetrics& metrics);

    // The secret and SCRAM keys the client's login revealed, taught to every pool this client
    // uses (see ServerPool::learn_credentials); only for a client logging in as the pools' user.
    void learn_credentials(std::optional<std::string> secret, std::optional<ScramKeys> scram_keys);

    // The pool whose first server's parameters welcome the client: the primary's; with none
    // known, the first healthy host's (a failover must not refuse logins); else the first
    // host's. Null when the database or its hosts are gone from the configuration.
    [[nodiscard]] std::shared_ptr<ServerPool> welcome_pool();

    struct Choice {
        std::shared_ptr<ServerPool> pool; // null: no host can take it now (decision.reason)
        routing::RouteDecision decision;
    };
    // The host for a transaction that may (`read_only`) or may not run on a replica; counted in
    // the routing metrics.
    [[nodiscard]] Choice choose(bool read_only);

    // The linked transaction is over; it ran on `role` and `wrote` unless it was read-only.
    void transaction_done(routing::Role role, bool wrote);

    // Whether transactions may go anywhere but the primary (worth classifying them).
    [[nodiscard]] bool routes_reads() const noexcept {
        return config_.routing != routing::Mode::primary_only;
    }

private:
    [[nodiscard]] const routing::DatabaseTopology* topology();
    [[nodiscard]] std::shared_ptr<ServerPool> pool_for(const std::string& host);
    // Read-your-writes: how far a replica must have replayed for this client; nullopt when no
    // replica may serve it yet.
    [[nodiscard]] std::optional<routing::Lsn>
    replay_floor(const routing::DatabaseTopology& topology);

    Runtime& runtime_;
    const std::string database_;
    const std::string client_user_;
    const DatabaseConfig& config_;
    Metrics::DatabaseMetrics& metrics_;
    const routing::RoutePolicy policy_;

    std::shared_ptr<const routing::Topology> topology_;
    // The pools this client used, by host (a database has a handful of hosts).
    std::vector<std::pair<std::string, std::shared_ptr<ServerPool>>> pools_;
    std::optional<std::string> secret_;
    std::optional<ScramKeys> scram_keys_;
    bool learns_credentials_ = false;

    // Read-your-writes state: when the client's last write ended, and the floor it implies
    // once a probe has seen it.
    std::optional<routing::Clock::time_point> unseen_write_;
    routing::Lsn replay_floor_ = 0;
    bool wrote_ = false; // sticky
};

} // namespace proxy

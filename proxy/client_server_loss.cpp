#include "proxy/client_session_impl.hpp"

#include <cctype>

namespace proxy {
namespace {

// How often a transaction waiting for a primary looks at the topology again.
constexpr auto topology_poll = std::chrono::milliseconds(10);

// Why a login failed, when the host rather than the login is at fault: the connection failed
// (class 08), or the server is shutting down or starting up (57P01-57P03).
bool host_unavailable(std::string_view sqlstate) {
    return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
           sqlstate == "57P03";
}

// How a statement ends a transaction block, judged by its first words as PostgreSQL's grammar
// names them (ROLLBACK TO SAVEPOINT does not end it).
enum class BlockEnd { none, commit, rollback };

BlockEnd block_end(std::string_view sql) {
    const auto word = [&sql] {
        const auto start = sql.find_first_not_of(" \t\r\n;");
        if (start == std::string_view::npos) return std::string();
        sql.remove_prefix(start);
        std::string lowered;
        while (!sql.empty() && std::isalpha(static_cast<unsigned char>(sql.front()))) {
            lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(sql.front())));
            sql.remove_prefix(1);
        }
        return lowered;
    };
    const std::string first = word();
    if (first == "commit" || first == "end") return BlockEnd::commit;
    if (first == "abort") return BlockEnd::rollback;
    if (first == "rollback") return word() == "to" ? BlockEnd::none : BlockEnd::rollback;
    return BlockEnd::none;
}

} // namespace

asio::awaitable<bool> ClientSession::acquire_routed() {
    const Duration wait = config_->settings.query_wait_timeout;
    const auto give_up = wait.count() > 0 ? pool::Clock::now() + wait : pool::TimePoint::max();
    for (;;) {
        const auto version = runtime_.topology.version();
        auto choice = router_->choose(linked_read_only_);
        if (!choice.pool &&
            (choice.decision.host || !runtime_.config()->databases.contains(startup_.database))) {
            // A reload removed the database, or the host since the topology was published:
            // the client is told at its next transaction (a running one ended on its server).
            co_await fail("3D000", "no such database: " + startup_.database);
            co_return false;
        }
        std::optional<ServerLoginError> failure;
        if (choice.pool) {
            pool_ = std::move(choice.pool);
            // A server that closed while unused is replaced by the pool; the watcher looks
            // at its host at once.
            auto acquired = co_await pool_->acquire(waiter(), worker_, [this] {
                runtime_.host_watch.probe_now(pool_->host().to_string());
            });
            if (acquired) {
                server_ = std::move(*acquired);
                linked_role_ = choice.decision.role;
                co_return true;
            }
            failure = acquired.error();
            // A host that cannot be reached, or that is shutting down or starting up, may
            // be failing over: the watcher looks at once, and the transaction waits for
            // what it finds. Other refusals (a password, a limit) are final.
            runtime_.host_watch.probe_now(pool_->host().to_string());
            if (!runtime_.host_watch.watching() || !host_unavailable(failure->sqlstate)) {
                co_await fail(failure->sqlstate, failure->message);
                co_return false;
            }
        }
        if (!co_await topology_changes(version, give_up)) {
            if (failure) {
                co_await fail(failure->sqlstate, failure->message);
            } else {
                co_await fail("08P01", std::string("query_wait_timeout: ") +
                                           std::string(to_string(choice.decision.reason)));
            }
            co_return false;
        }
    }
}

asio::awaitable<bool> ClientSession::topology_changes(std::uint64_t version,
                                                      pool::TimePoint give_up) {
    while (runtime_.topology.version() == version) {
        if (pool::Clock::now() >= give_up) co_return false;
        co_await sleep_for(topology_poll);
    }
    co_return true;
}

asio::awaitable<bool> ClientSession::lose_server() {
    runtime_.host_watch.probe_now(pool_->host().to_string());
    if (server_message_open_) {
        // The start of a long message went on to the client, and its end never will: no
        // reply of ours can follow on that stream (the client would read it as the rest of
        // the message), so the client's connection ends here, as its server's did.
        runtime_.metrics.client_error("08006");
        end_reason_ = "server conn crashed? (lost in the middle of a message)";
        co_return false;
    }
    auto& tracker = server_->tracker();
    const bool in_block = tracker.transaction_status() != wire::be::TransactionStatus::idle;
    const std::size_t owed = tracker.ready_owed();
    const bool inside_batch = tracker.inside_batch();
    // What the client would send next in its block cannot be answered as PostgreSQL would
    // without a Query to answer (see answer_lost_block).
    if (mode_ == PoolMode::session || (in_block && inside_batch)) {
        co_await fail("08006", "server conn crashed?");
        co_return false;
    }
    release_server(pool::Release::close);
    log::info(name(), " lost its server mid-transaction");
    runtime_.metrics.client_error("08006");
    block_lost_ = in_block;
    loss_untold_ = true;
    // The client waits for nothing (idle in its block): it hears of the loss at its next
    // request, as it would of any error of its transaction.
    if (owed == 0 && !inside_batch) co_return true;
    wire::Writer writer;
    tell_loss(writer);
    for (std::size_t i = 0; i < owed; ++i)
        wire::be::ReadyForQuery{block_lost_ ? wire::be::TransactionStatus::failed
                                            : wire::be::TransactionStatus::idle}
            .encode(writer);
    // The client is in the middle of an extended-query batch: the rest of it, up to its
    // Sync, is skipped, as a server skips after an error.
    skipping_to_sync_ = inside_batch;
    if (!co_await write_all(client_, writer.bytes())) {
        end_reason_ = "client unexpected eof";
        co_return false;
    }
    co_return true;
}

void ClientSession::tell_loss(wire::Writer& writer) {
    wire::be::ErrorResponse::make(wire::be::Severity::error, "08006",
                                  "server connection lost; the transaction did not complete")
        .encode(writer);
    loss_untold_ = false;
}

void ClientSession::answer_lost_block(const wire::Frame& query) {
    wire::Writer writer;
    const auto text = wire::fe::Query::parse(query);
    const auto end = text ? block_end(text->query) : BlockEnd::none;
    if (end == BlockEnd::rollback) {
        wire::be::CommandComplete{"ROLLBACK"}.encode(writer);
    } else if (end == BlockEnd::commit || loss_untold_) {
        tell_loss(writer);
    } else {
        wire::be::ErrorResponse::make(
            wire::be::Severity::error, "25P02",
            "current transaction is aborted, commands ignored until end of transaction block")
            .encode(writer);
    }
    block_lost_ = end == BlockEnd::none;
    wire::be::ReadyForQuery{block_lost_ ? wire::be::TransactionStatus::failed
                                        : wire::be::TransactionStatus::idle}
        .encode(writer);
    std::ranges::copy(writer.bytes(), std::back_inserter(lost_replies_));
}

std::span<const std::byte> ClientSession::ready_idle() {
    static constexpr std::array<std::byte, 6> ready = {
        std::byte{'Z'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{5}, std::byte{'I'}};
    return ready;
}

} // namespace proxy

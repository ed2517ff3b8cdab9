#include "pool/statement_cache.hpp"

#include <iterator>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace pool {

Statement::Statement(std::span<const std::byte> query_and_types)
    : key_(reinterpret_cast<const char*>(query_and_types.data()), query_and_types.size()) {}

std::string_view Statement::query() const noexcept {
    return std::string_view(key_).substr(0, key_.find('\0'));
}

// What the StatementRegistry shares with the deleters of its statements.
struct StatementRegistry::Table {
    struct Slot {
        // Tells this statement from a successor with the same bytes once `weak` has expired.
        const Statement* statement = nullptr;
        std::weak_ptr<const Statement> weak;
    };

    mutable std::mutex mutex;
    // The keys view the bytes of their slot's statement, which outlives its slot: the deleter
    // erases the slot (under the mutex) before deleting the statement, and intern() replaces an
    // expired slot's key along with the slot.
    std::unordered_map<std::string_view, Slot> by_key; // guarded by mutex
    std::uint64_t last_id = 0;                         // guarded by mutex

    // Requires the mutex. Returns the live statement with these bytes, or null.
    [[nodiscard]] StatementPtr find(std::string_view key) const {
        const auto it = by_key.find(key);
        return it == by_key.end() ? nullptr : it->second.weak.lock();
    }
};

// The deleter of every interned statement. It takes the mutex, so no StatementPtr may be
// dropped while the mutex is held: intern() returns its result, and drops the candidate it did
// not need, only after letting go.
struct StatementRegistry::Release {
    std::shared_ptr<Table> table;

    void operator()(Statement* statement) const {
        {
            const std::lock_guard lock(table->mutex);
            const auto it = table->by_key.find(statement->key());
            if (it != table->by_key.end() && it->second.statement == statement) {
                table->by_key.erase(it);
            }
        }
        delete statement;
    }
};

StatementRegistry::StatementRegistry() : table_(std::make_shared<Table>()) {}

StatementPtr StatementRegistry::intern(std::span<const std::byte> query_and_types) {
    const std::string_view key(reinterpret_cast<const char*>(query_and_types.data()),
                               query_and_types.size());
    {
        const std::lock_guard lock(table_->mutex);
        if (auto found = table_->find(key)) {
            return found;
        }
    }
    // A new text: copy it without the lock, then look again, since another thread may have
    // interned the same bytes meanwhile. If the shared_ptr cannot be built, it deletes the
    // statement through Release, which finds no slot of its own.
    auto* fresh = new Statement(query_and_types);
    const StatementPtr candidate(fresh, Release{table_});
    StatementPtr out;
    {
        const std::lock_guard lock(table_->mutex);
        out = table_->find(key);
        if (!out) {
            const std::uint64_t id = table_->last_id + 1;
            fresh->server_name_ = "PGMARINA_" + std::to_string(id);
            fresh->id_ = StatementId{id};
            // A slot whose statement is being released: its key views bytes about to go.
            table_->by_key.erase(key);
            table_->by_key.emplace(fresh->key(), Table::Slot{fresh, candidate});
            table_->last_id = id;
            out = candidate;
        }
    }
    return out;
}

std::size_t StatementRegistry::size() const {
    const std::lock_guard lock(table_->mutex);
    return table_->by_key.size();
}

bool ClientStatements::prepare(std::string_view name, StatementPtr statement) {
    if (name.empty() || !statement) {
        throw std::logic_error("pool::ClientStatements::prepare: the unnamed statement or none");
    }
    return by_name_.try_emplace(std::string(name), std::move(statement)).second;
}

const StatementPtr* ClientStatements::find(std::string_view name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &it->second;
}

bool ClientStatements::close(std::string_view name) {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) {
        return false;
    }
    by_name_.erase(it);
    return true;
}

ServerStatements::Use ServerStatements::use(const StatementPtr& statement) {
    if (capacity_ == 0 || !statement) {
        throw std::logic_error("pool::ServerStatements::use: cache disabled or no statement");
    }
    Use out;
    if (const auto it = entries_.find(statement->id()); it != entries_.end()) {
        Entry& entry = it->second;
        pinned_.splice(pinned_.end(), entry.pinned ? pinned_ : idle_, entry.at);
        entry.pinned = true;
    } else {
        pinned_.push_back(statement);
        try {
            entries_.emplace(statement->id(), Entry{std::prev(pinned_.end()), true});
        } catch (...) {
            pinned_.pop_back();
            throw;
        }
        out.prepare = true;
    }
    while (entries_.size() > capacity_ && !idle_.empty()) {
        out.close.push_back(idle_.front());
        erase(entries_.find(idle_.front()->id()));
    }
    return out;
}

void ServerStatements::unpin_all() noexcept {
    for (const auto& statement : pinned_) {
        Entry& entry = entries_.find(statement->id())->second;
        entry.pinned = false;
        entry.close_failed = false;
    }
    idle_.splice(idle_.end(), pinned_);
}

void ServerStatements::parse_failed(StatementId id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) {
        return;
    }
    if (it->second.close_failed) {
        it->second.close_failed = false;
    } else {
        erase(it);
    }
}

void ServerStatements::close_failed(StatementPtr statement) {
    if (const auto it = entries_.find(statement->id()); it != entries_.end()) {
        it->second.close_failed = true;
        return;
    }
    idle_.push_front(std::move(statement));
    try {
        entries_.emplace(idle_.front()->id(), Entry{idle_.begin(), false});
    } catch (...) {
        idle_.pop_front();
        throw;
    }
}

StatementPtr ServerStatements::remove(StatementId id) {
    const auto it = entries_.find(id);
    if (it == entries_.end()) {
        return nullptr;
    }
    StatementPtr statement = *it->second.at;
    erase(it);
    return statement;
}

void ServerStatements::clear() noexcept {
    entries_.clear();
    idle_.clear();
    pinned_.clear();
}

bool ServerStatements::pinned(StatementId id) const {
    const auto it = entries_.find(id);
    return it != entries_.end() && it->second.pinned;
}

void ServerStatements::erase(std::unordered_map<StatementId, Entry>::iterator it) noexcept {
    (it->second.pinned ? pinned_ : idle_).erase(it->second.at);
    entries_.erase(it);
}

} // namespace pool

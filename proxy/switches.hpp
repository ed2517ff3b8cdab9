// The operator's switches on databases: PAUSE, DISABLE, SUSPEND (reference.md 1.2).
//
// Thread safety: every member may be called from any thread. The session asks paused() before
// every transaction, so an atomic count of raised switches spares it the lock while none is.
#pragma once

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace proxy {

class Switches {
public:
    // "" means every database.
    void pause(std::string_view database);
    void resume(std::string_view database); // also ends SUSPEND
    void disable(std::string_view database);
    void enable(std::string_view database);
    void suspend();

    // New transactions of `database` wait (PAUSE, KILL, SUSPEND).
    [[nodiscard]] bool paused(std::string_view database) const;
    // New clients of `database` are refused (DISABLE).
    [[nodiscard]] bool disabled(std::string_view database) const;
    [[nodiscard]] bool suspended() const;
    // SHOW STATE `paused`: every database is.
    [[nodiscard]] bool all_paused() const;

private:
    void changed();

    mutable std::mutex mutex_;
    bool all_paused_ = false;
    bool suspended_ = false;
    std::set<std::string, std::less<>> paused_;
    std::set<std::string, std::less<>> disabled_;
    std::atomic<bool> any_{false};
};

} // namespace proxy

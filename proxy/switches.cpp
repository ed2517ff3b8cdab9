#include "proxy/switches.hpp"

namespace proxy {

void Switches::pause(std::string_view database) {
    std::lock_guard lock{mutex_};
    if (database.empty()) {
        all_paused_ = true;
    } else {
        paused_.emplace(database);
    }
    changed();
}

void Switches::resume(std::string_view database) {
    std::lock_guard lock{mutex_};
    if (database.empty()) {
        all_paused_ = false;
        suspended_ = false;
        paused_.clear();
    } else {
        paused_.erase(std::string(database));
    }
    changed();
}

void Switches::disable(std::string_view database) {
    std::lock_guard lock{mutex_};
    disabled_.emplace(database);
    changed();
}

void Switches::enable(std::string_view database) {
    std::lock_guard lock{mutex_};
    disabled_.erase(std::string(database));
    changed();
}

void Switches::suspend() {
    std::lock_guard lock{mutex_};
    suspended_ = true;
    changed();
}

bool Switches::paused(std::string_view database) const {
    if (!any_.load(std::memory_order_acquire)) return false;
    std::lock_guard lock{mutex_};
    return all_paused_ || suspended_ || paused_.contains(database);
}

bool Switches::disabled(std::string_view database) const {
    if (!any_.load(std::memory_order_acquire)) return false;
    std::lock_guard lock{mutex_};
    return disabled_.contains(database);
}

bool Switches::suspended() const {
    std::lock_guard lock{mutex_};
    return suspended_;
}

bool Switches::all_paused() const {
    std::lock_guard lock{mutex_};
    return all_paused_;
}

void Switches::changed() {
    any_.store(all_paused_ || suspended_ || !paused_.empty() || !disabled_.empty(),
               std::memory_order_release);
}

} // namespace proxy

#include "pool/caps.hpp"

namespace pool {

bool Caps::full() const noexcept {
    const int limit = max();
    return limit > 0 && current() >= limit;
}

bool Caps::try_acquire() noexcept {
    // A loop rather than fetch_add-then-undo, so that a concurrent reader never sees the count
    // above the limit.
    int count = current_.load(std::memory_order_relaxed);
    do {
        const int limit = max();
        if (limit > 0 && count >= limit) {
            return false;
        }
    } while (!current_.compare_exchange_weak(count, count + 1, std::memory_order_relaxed));
    return true;
}

void Caps::release() noexcept {
    current_.fetch_sub(1, std::memory_order_relaxed);
}

} // namespace pool

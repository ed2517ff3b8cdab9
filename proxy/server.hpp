#pragma once

#include <memory>

#include "proxy/config.hpp"

namespace proxy {

// Runs pgmarina with `config` until SIGINT or SIGTERM: one io_context per worker thread, each
// with its own SO_REUSEPORT acceptor per listen address (design.md "Threads"). Returns the
// process exit code: 0 after a signal, 1 when a listen address cannot be bound.
int run(std::shared_ptr<const Config> config);

} // namespace proxy

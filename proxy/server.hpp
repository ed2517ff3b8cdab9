#pragma once

#include <memory>

#include "proxy/config.hpp"

namespace proxy {

// Runs pgmarina with `config` until a shutdown (shutdown.hpp: SHUTDOWN, SIGINT, SIGTERM, SIGQUIT):
// one io_context per worker thread, each with its own SO_REUSEPORT acceptor per listen address
// (design.md "Threads"), the Unix socket in unix_socket_dir, and the pools' janitor. Returns the
// process exit code: 0 after a signal, 1 when an address cannot be bound or the auth_file cannot be
// read.
int run(std::shared_ptr<const Config> config);

} // namespace proxy

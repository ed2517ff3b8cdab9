// TCP keepalive on client and server sockets, with PgBouncer's settings (tcp_keepalive,
// tcp_keepidle, tcp_keepintvl, tcp_keepcnt; 0 leaves the kernel's default).
#pragma once

#include "proxy/config.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace proxy {

inline void set_keepalive(int fd, const Settings& settings) noexcept {
    const int on = settings.tcp_keepalive ? 1 : 0;
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    if (!settings.tcp_keepalive) return;
    const auto set = [fd](int option, int value) {
        if (value > 0) ::setsockopt(fd, IPPROTO_TCP, option, &value, sizeof value);
    };
    set(TCP_KEEPIDLE, settings.tcp_keepidle);
    set(TCP_KEEPINTVL, settings.tcp_keepintvl);
    set(TCP_KEEPCNT, settings.tcp_keepcnt);
}

} // namespace proxy

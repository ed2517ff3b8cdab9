#pragma once

// One HTTP/1.1 GET to a local port, for the metrics and health endpoints.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>

namespace support {

// The whole response, status line first, read until the server closes.
inline std::string http_get(std::uint16_t port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::string response;
    std::array<char, 65536> buffer{};
    while (const auto n = ::recv(fd, buffer.data(), buffer.size(), 0)) {
        if (n < 0) break;
        response.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return response;
}

} // namespace support

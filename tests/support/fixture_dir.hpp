#pragma once

// What the C++ drivers of the fixture scripts in tests/fixture share: where a cluster's
// directory goes, and how its KEY=VALUE env file is read.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>

#include <unistd.h>

namespace support {

// Clusters go to /dev/shm when it has room: initdb and pg_basebackup create about a thousand
// files per node, and on tmpfs a primary with two replicas starts in 1.5 s where a busy CI VM's
// ext4 took 6 to 9 s. Docker gives containers only 64 MB of /dev/shm, too little for three nodes.
inline std::filesystem::path cluster_parent_dir() {
    constexpr std::uintmax_t room_needed = std::uintmax_t{1} << 30;
    const std::filesystem::path shm = "/dev/shm";
    std::error_code error;
    const std::filesystem::space_info space = std::filesystem::space(shm, error);
    if (!error && space.available >= room_needed && ::access(shm.c_str(), W_OK | X_OK) == 0) {
        return shm;
    }
    return std::filesystem::temp_directory_path();
}

// The KEY=VALUE lines of a file such as DIR/cluster.env; # starts a comment line.
inline std::map<std::string, std::string> read_env_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read " + path.string());
    }
    std::map<std::string, std::string> env;
    std::string line;
    while (std::getline(in, line)) {
        const auto equals = line.find('=');
        if (!line.empty() && line.front() != '#' && equals != std::string::npos) {
            env.emplace(line.substr(0, equals), line.substr(equals + 1));
        }
    }
    return env;
}

} // namespace support

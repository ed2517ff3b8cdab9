#pragma once

// A fresh, private directory for one test resource (a cluster, a pgmarina's config and log).

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

namespace support {

// Creates `parent`/`prefix`<6 random characters> with mkdtemp and returns its path.
inline std::filesystem::path make_temp_dir(const std::filesystem::path& parent,
                                           const std::string& prefix) {
    // mkdtemp replaces the template's last six characters, which must be 'X'.
    std::string path = (parent / prefix).string() + std::string(6, 'X');
    if (::mkdtemp(path.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + path);
    }
    return path;
}

} // namespace support

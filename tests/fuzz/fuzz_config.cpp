// The configuration loader (proxy/config.cpp) on arbitrary text, through load_config_string, the
// entry point load_config() and reload use once the file is read. Checked: nothing crashes or
// throws; a result is a configuration or a list of errors, never both and never neither; every
// error has a message and names the origin; and an accepted configuration keeps the rules the
// validator promises (min_pool_size within default_pool_size, somewhere to listen, every
// database with a host, no database named like the admin console).

#include "proxy/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

constexpr std::string_view origin = "/etc/pgmarina/fuzz.toml";

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto result = proxy::load_config_string(text, origin);
    if (!result) {
        require(!result.errors().empty());
        for (const auto& error : result.errors()) {
            require(!error.message.empty());
            require(error.origin == origin);
            (void)error.to_string();
        }
        return 0;
    }
    require(result.errors().empty());
    const proxy::Config& config = *result.config();
    require(config.settings.min_pool_size <= config.settings.default_pool_size);
    require(!config.settings.listen.empty() || !config.settings.unix_socket_dir.empty());
    for (const auto& [name, database] : config.databases) {
        require(!database.hosts.empty());
        require(name != "pgbouncer" && name != "pgmarina"); // reserved for the console
    }
    (void)proxy::listen_port(config.settings);
    return 0;
}

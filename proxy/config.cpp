#include "proxy/config.hpp"

#include "proxy/settings.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace proxy {

namespace {

constexpr std::array<std::string_view, 5> section_names{"databases", "metrics", "peers", "pgmarina",
                                                        "users"};

// The names of the admin console; a [databases] entry may not shadow them.
constexpr std::array<std::string_view, 2> admin_databases{"pgbouncer", "pgmarina"};

bool is_bare_key(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// "[databases.app]", or "[databases."my db"]" when the name needs quoting in TOML.
std::string section_label(std::string_view parent, std::string_view name) {
    std::string key(name);
    if (!is_bare_key(name)) {
        key = "\"";
        for (char c : name) {
            if (c == '"' || c == '\\') {
                key += '\\';
            }
            key += c;
        }
        key += '"';
    }
    return "[" + std::string(parent) + "." + key + "]";
}

// Where to point an error about `key`: at its value when the file sets it, else at the table.
const toml::source_region& where(const toml::table& table, std::string_view key) {
    const toml::node* node = table.get(key);
    return node != nullptr ? node->source() : table.source();
}

const toml::table* as_section(const toml::node& node, std::string_view label, std::string_view what,
                              Diagnostics& diag) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
        diag.error(node.source(), std::string(what) + " must be a table such as " +
                                      std::string(label) + ", not " +
                                      std::string(describe_node(node)));
    }
    return table;
}

void report_unknown_section(const toml::key& name, Diagnostics& diag) {
    std::string key(name.str());
    std::string message;
    if (key == "pgbouncer") {
        message = "unknown section [pgbouncer]; pgmarina's settings go in [pgmarina]";
    } else if (std::any_of(global_keys().begin(), global_keys().end(),
                           [&](const auto& info) { return info.spec.name == key; })) {
        message = "key '" + key + "' is outside any section; it belongs in [pgmarina]";
    } else {
        message = unknown_key_message(key, "at the top level", section_names);
    }
    diag.error(name.source(), message);
}

// [databases] and [users]: one sub-table per name, each decoded with `keys`.
template <class S>
void decode_named_tables(const toml::node& node, std::string_view parent,
                         std::span<const KeyInfo<S>> keys,
                         std::map<std::string, S, std::less<>>& out, Diagnostics& diag) {
    const toml::table* tables = as_section(node, "[" + std::string(parent) + ".<name>]",
                                           "[" + std::string(parent) + "]", diag);
    if (tables == nullptr) {
        return;
    }
    for (auto&& [name, entry] : *tables) {
        std::string label = section_label(parent, name.str());
        if (name.str().empty()) {
            diag.error(name.source(), "the name in " + label + " must not be empty");
            continue;
        }
        const toml::table* table = entry.as_table();
        if (table == nullptr) {
            // The likely cause is a PgBouncer line such as app = "host=... dbname=...".
            diag.error(entry.source(), "'" + std::string(name.str()) + "' in [" +
                                           std::string(parent) + "] must be a table such as " +
                                           label + ", not " + std::string(describe_node(entry)) +
                                           "; a PgBouncer connection string becomes one key "
                                           "per line");
            continue;
        }
        S value{};
        decode_table(*table, keys, label, value, diag);
        out.emplace(std::string(name.str()), std::move(value));
    }
}

// [peers]: one sub-table per instance, named by its peer_id.
void decode_peers(const toml::node& node, std::map<int, Endpoint>& out, Diagnostics& diag) {
    std::map<std::string, PeerConfig, std::less<>> peers;
    decode_named_tables(node, "peers", peer_keys(), peers, diag);
    const toml::table* table = node.as_table();
    for (const auto& [name, peer] : peers) {
        int id = 0;
        const bool digits =
            !name.empty() && name.size() <= 5 &&
            std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (digits) id = std::stoi(name);
        if (id < 1 || id > 16383) {
            diag.error(table->get(name)->source(),
                       section_label("peers", name) +
                           ": a peer is named by its peer_id, 1 to 16383");
            continue;
        }
        out.emplace(id, peer.host);
    }
}

Config decode_document(const toml::table& root, Diagnostics& diag) {
    Config config;
    for (auto&& [name, node] : root) {
        if (name == "pgmarina") {
            if (const auto* table = as_section(node, "[pgmarina]", "'pgmarina'", diag)) {
                decode_table(*table, global_keys(), "[pgmarina]", config.settings, diag);
            }
        } else if (name == "metrics") {
            if (const auto* table = as_section(node, "[metrics]", "'metrics'", diag)) {
                decode_table(*table, metrics_keys(), "[metrics]", config.metrics, diag);
            }
        } else if (name == "databases") {
            decode_named_tables(node, "databases", database_keys(), config.databases, diag);
        } else if (name == "users") {
            decode_named_tables(node, "users", user_keys(), config.users, diag);
        } else if (name == "peers") {
            decode_peers(node, config.peers, diag);
        } else {
            report_unknown_section(name, diag);
        }
    }
    for (auto& [name, database] : config.databases) {
        if (database.dbname.empty()) {
            database.dbname = name;
        }
    }
    return config;
}

const toml::table& table_or_empty(const toml::table& root, std::string_view key) {
    static const toml::table empty;
    const toml::table* table = root.get_as<toml::table>(key);
    return table != nullptr ? *table : empty;
}

// Rules that involve more than one key. Runs only on a file whose keys all decoded, so each
// message is about the relation and not an echo of an earlier error.
void validate(const Config& config, const toml::table& root, Diagnostics& diag) {
    const Settings& s = config.settings;
    const toml::table& global = table_or_empty(root, "pgmarina");

    if (s.min_pool_size > s.default_pool_size) {
        diag.error(where(global, "min_pool_size"), "min_pool_size (" +
                                                       std::to_string(s.min_pool_size) +
                                                       ") must not exceed default_pool_size (" +
                                                       std::to_string(s.default_pool_size) + ")");
    }
    if (s.listen.empty() && s.unix_socket_dir.empty()) {
        diag.error(global.source(),
                   "clients could not connect: listen is [] and unix_socket_dir is \"\"");
    }
    if (s.auth_type == AuthType::hba && s.auth_hba_file.empty()) {
        diag.error(where(global, "auth_type"), "auth_type \"hba\" needs auth_hba_file");
    }

    if (s.log_format != "text" && s.log_format != "json") {
        diag.error(where(global, "log_format"),
                   "log_format must be \"text\" or \"json\", not \"" + s.log_format + "\"");
    }
    if (!config.peers.empty() && s.peer_id == 0) {
        diag.error(table_or_empty(root, "peers").source(),
                   "[peers] needs this instance's peer_id in [pgmarina]");
    }

    const toml::table& databases = table_or_empty(root, "databases");
    for (const auto& [name, database] : config.databases) {
        const toml::table& table = table_or_empty(databases, name);
        std::string label = section_label("databases", name);
        if (std::find(admin_databases.begin(), admin_databases.end(), name) !=
            admin_databases.end()) {
            diag.error(table.source(),
                       "database name '" + name + "' is reserved for the admin console");
        }
        int pool_size = database.pool_size.value_or(s.default_pool_size);
        int min_pool_size = database.min_pool_size.value_or(s.min_pool_size);
        if (min_pool_size > pool_size) {
            diag.error(where(table, database.min_pool_size ? "min_pool_size" : "pool_size"),
                       "min_pool_size (" + std::to_string(min_pool_size) +
                           ") must not exceed pool_size (" + std::to_string(pool_size) + ") in " +
                           label);
        }
        if (database.password && !database.user) {
            diag.error(where(table, "password"),
                       "password in " + label + " is the password of 'user', which is not set");
        }
    }
}

// auth_file, auth_hba_file and the TLS files are relative to the configuration file, not to the
// working directory as in PgBouncer: a service's working directory is usually "/", which made
// relative paths in PgBouncer configs a trap.
void resolve_relative_paths(Settings& settings, const std::filesystem::path& origin) {
    std::filesystem::path base = origin.parent_path();
    for (std::string* file : {&settings.auth_file, &settings.auth_hba_file,
                              &settings.client_tls_key_file, &settings.client_tls_cert_file,
                              &settings.client_tls_ca_file, &settings.server_tls_ca_file,
                              &settings.server_tls_key_file, &settings.server_tls_cert_file}) {
        if (!file->empty() && std::filesystem::path(*file).is_relative() && !base.empty()) {
            *file = (base / *file).lexically_normal().string();
        }
    }
}

} // namespace

std::string ConfigError::to_string() const {
    if (line == 0) {
        return origin + ": " + message;
    }
    return origin + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

LoadResult::LoadResult(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

LoadResult::LoadResult(std::vector<ConfigError> errors) : errors_(std::move(errors)) {}

LoadResult load_config_string(std::string_view toml, std::string_view origin) {
    Diagnostics diag{std::string(origin)};
    toml::table root;
    try {
        root = toml::parse(toml, origin);
    } catch (const toml::parse_error& error) {
        diag.error(error.source(), std::string(error.description()));
        return LoadResult(diag.take());
    }
    Config config = decode_document(root, diag);
    if (diag.empty()) {
        validate(config, root, diag);
    }
    if (!diag.empty()) {
        return LoadResult(diag.take());
    }
    config.source = std::filesystem::path(origin);
    resolve_relative_paths(config.settings, config.source);
    return LoadResult(std::make_shared<const Config>(std::move(config)));
}

boost::system::result<std::string, ConfigError>
read_config_file(const std::filesystem::path& path) {
    const std::string origin = path.string();
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return ConfigError{origin, 0, 0, "is a directory"};
    std::ifstream in(path, std::ios::binary);
    if (!in) return ConfigError{origin, 0, 0, std::string("cannot open: ") + std::strerror(errno)};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return ConfigError{origin, 0, 0, std::string("cannot read: ") + std::strerror(errno)};
    }
    // std::string would also make a ConfigError (aggregate initialization): say which it is.
    return {boost::system::in_place_value, text.str()};
}

LoadResult load_config(const std::filesystem::path& path) {
    auto text = read_config_file(path);
    if (!text) return LoadResult(std::vector{text.error()});
    return load_config_string(*text, path.string());
}

std::shared_ptr<const Config> default_config() {
    return std::make_shared<const Config>();
}

std::uint16_t listen_port(const Settings& settings) {
    return settings.listen.empty() ? 6432 : settings.listen.front().port;
}

bool is_admin_database(const Config& config, std::string_view name) {
    return (name == "pgbouncer" || name == "pgmarina") && !config.databases.contains(name);
}

} // namespace proxy

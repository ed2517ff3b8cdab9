#include "proxy/pgbouncer_convert.hpp"

#include "proxy/auth_file.hpp"
#include "proxy/config.hpp"
#include "proxy/pgbouncer_ini.hpp"
#include "proxy/settings.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <functional>
#include <map>
#include <span>
#include <utility>

namespace proxy::pgbouncer {

namespace {

// [pgbouncer] keys pgmarina has no counterpart for, with the reason when there is more to say
// than "no such setting".
constexpr std::array<std::pair<std::string_view, std::string_view>, 33> not_carried_reasons{{
    {"logfile", "pgmarina logs to stderr (journald or the container runtime keeps it)"},
    {"syslog", "pgmarina logs to stderr (journald or the container runtime keeps it)"},
    {"syslog_ident", "pgmarina logs to stderr (journald or the container runtime keeps it)"},
    {"syslog_facility", "pgmarina logs to stderr (journald or the container runtime keeps it)"},
    {"pidfile", "pgmarina writes no pid file; run it under systemd or a container runtime"},
    {"user", "pgmarina does not switch Unix user; start it as that user (systemd User=)"},
    {"so_reuseport", "pgmarina always listens with SO_REUSEPORT, one acceptor per worker"},
    {"peer_id", "cancel peering between instances is not carried over"},
    {"verbose", "no log verbosity setting"},
    {"log_stats", "statistics are on /metrics and SHOW STATS, not in the log"},
    {"log_pooler_errors", "errors pgmarina sends are counted in pgmarina_client_errors_total"},
    {"unix_socket_mode", "the Unix socket gets the default mode"},
    {"unix_socket_group", "the Unix socket gets the default group"},
    {"listen_backlog", "the listen backlog is the system's default"},
    {"tcp_defer_accept", "no such setting"},
    {"tcp_socket_buffer", "no such setting"},
    {"tcp_user_timeout", "no such setting"},
    {"sbuf_loopcnt", "no such setting (each client has its own coroutine)"},
    {"dns_max_ttl", "host names are resolved by the failover watcher, not cached by TTL"},
    {"dns_nxdomain_ttl", "host names are resolved by the failover watcher, not cached by TTL"},
    {"dns_zone_check_period", "host names are resolved by the failover watcher"},
    {"resolv_conf", "host names are resolved with the system's resolver"},
    {"disable_pqexec", "no such setting"},
    {"server_round_robin", "replicas are balanced per database (load_balance)"},
    {"server_fast_close", "no such setting"},
    {"suspend_timeout", "online restart (SUSPEND + takeover) is not supported"},
    {"autodb_idle_timeout", "there are no automatically created databases"},
    {"track_extra_parameters",
     "pgmarina tracks a fixed set of parameters (IntervalStyle and search_path included)"},
    {"max_user_client_connections", "no per-user cap on client connections"},
    {"max_db_client_connections", "no per-database cap on client connections"},
    {"auth_ident_file", "auth_type peer/ident is not supported"},
    {"client_tls_dheparams", "TLS 1.2 ciphers use ECDHE only"},
    {"client_tls_ecdhcurve", "the OpenSSL default curves are used"},
}};

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    for (;;) {
        const auto comma = text.find(',');
        std::string_view item = trim(text.substr(0, comma));
        if (!item.empty()) out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

std::string toml_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            char escape[8];
            std::snprintf(escape, sizeof escape, "\\u%04x", u);
            out += escape;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string toml_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        out += (i == 0 ? "" : ", ") + toml_string(items[i]);
    }
    return out + "]";
}

bool is_bare_key(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
}

std::string toml_key(std::string_view name) {
    return is_bare_key(name) ? std::string(name) : toml_string(name);
}

bool is_integer(std::string_view text) {
    if (text.starts_with('-')) text.remove_prefix(1);
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A number of seconds as TOML writes numbers ("0.5", not ".5"), or nullopt.
std::optional<std::string> toml_number(std::string_view text) {
    if (is_integer(text)) return std::string(text);
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6f", value);
    std::string out = buffer;
    while (out.back() == '0')
        out.pop_back();
    if (out.back() == '.') out.push_back('0');
    return out;
}

std::optional<bool> ini_bool(std::string_view text) {
    const std::string value = lower(text);
    if (value == "1" || value == "yes" || value == "on" || value == "true") return true;
    if (value == "0" || value == "no" || value == "off" || value == "false") return false;
    return std::nullopt;
}

// The value of a pgmarina key whose type text (from the settings table) is `type`, from
// PgBouncer's untyped text. A value that does not fit the type is passed on as a string, so that
// the config loader refuses it with its own message.
std::string toml_value(std::string_view type, std::string_view text) {
    if (type.starts_with("boolean")) {
        if (const auto value = ini_bool(text)) return *value ? "true" : "false";
    } else if (type.starts_with("integer")) {
        if (is_integer(text)) return std::string(text);
    } else if (type.starts_with("duration")) {
        if (const auto number = toml_number(text)) return *number;
    } else if (type.starts_with("size")) {
        if (is_integer(text)) return std::string(text);
    } else if (type.starts_with("array of strings")) {
        return toml_array(split_list(text));
    } else if (type.starts_with("one of")) {
        return toml_string(lower(text));
    }
    return toml_string(text);
}

std::string key_type(std::span<const KeyInfo<Settings>> keys, std::string_view name) {
    for (const auto& info : keys) {
        if (info.spec.name == name) return info.type(info.spec);
    }
    return {};
}

struct Item {
    std::string key;
    std::string value; // TOML text
    std::uint32_t line = 0;
};

struct Section {
    std::string header; // "[pgmarina]", "[databases.app]"
    std::uint32_t line = 0;
    std::vector<Item> items;

    void set(std::string key, std::string value, std::uint32_t source_line) {
        const auto found = std::find_if(items.begin(), items.end(),
                                        [&](const Item& item) { return item.key == key; });
        if (found != items.end()) {
            found->value = std::move(value);
            found->line = source_line;
        } else {
            items.push_back({std::move(key), std::move(value), source_line});
        }
    }
    [[nodiscard]] bool has(std::string_view key) const {
        return std::any_of(items.begin(), items.end(),
                           [&](const Item& item) { return item.key == key; });
    }
    void erase(std::string_view key) {
        std::erase_if(items, [&](const Item& item) { return item.key == key; });
    }
};

class Converter {
public:
    explicit Converter(const ConvertInput& input) : input_(input) { global_.header = "[pgmarina]"; }

    Conversion run();

private:
    // Line 0: not from one line of the ini (a default written out, a userlist entry).
    void drop(std::uint32_t line, std::string_view what, std::string_view why) {
        const std::string place =
            line == 0 ? input_.ini_origin : input_.ini_origin + ":" + std::to_string(line);
        dropped_.emplace_back(line, place + ": " + std::string(what) + ": " + std::string(why));
    }
    std::string path(std::string_view file, std::string_view key);

    void global_entry(const IniEntry& entry);
    void tls_protocols(const IniEntry& entry);
    void database_entry(const IniEntry& entry);
    void user_entry(const IniEntry& entry);
    void listen(const std::map<std::string, IniEntry>& entries);
    Section* user_section(const std::string& name, std::uint32_t line);

    // The TOML body; `where` gets, per line of it, (section index, item index or -1).
    std::string render(std::vector<std::pair<int, int>>* where) const;
    bool validate(); // drops what the loader refuses; false when that cannot make it load
    std::string header() const;

    const ConvertInput& input_;
    Section global_;
    std::vector<Section> databases_;
    std::vector<Section> users_;
    std::map<std::string, std::size_t> user_index_;
    std::vector<std::pair<std::uint32_t, std::string>> dropped_;
    std::vector<std::string> notes_;
    std::vector<std::string> errors_;
};

std::string Converter::path(std::string_view file, std::string_view key) {
    std::filesystem::path value(file);
    if (value.is_relative() && !input_.base_directory.empty() && !file.empty()) {
        value = (input_.base_directory / value).lexically_normal();
        notes_.push_back(std::string(key) + ": the relative path '" + std::string(file) +
                         "' is now " + value.string() +
                         " (PgBouncer reads it from its working directory, pgmarina from the "
                         "TOML file's directory)");
    }
    return toml_string(value.string());
}

void Converter::listen(const std::map<std::string, IniEntry>& entries) {
    const auto addr = entries.find("listen_addr");
    const auto port_entry = entries.find("listen_port");
    std::string port = port_entry != entries.end() ? port_entry->second.value : "6432";
    const std::uint32_t line = addr != entries.end()         ? addr->second.line
                               : port_entry != entries.end() ? port_entry->second.line
                                                             : 0;
    if (!is_integer(port)) {
        drop(port_entry->second.line, "listen_port", "not a port number");
        port = "6432";
    }
    std::vector<std::string> listen;
    if (addr != entries.end()) {
        for (const std::string& host : split_list(addr->second.value)) {
            const bool ipv6 = host.find(':') != std::string::npos;
            listen.push_back((ipv6 ? "[" + host + "]" : host) + ":" + port);
        }
    }
    if (listen.empty()) {
        notes_.emplace_back("listen = []: PgBouncer without listen_addr accepts clients on its "
                            "Unix socket only (pgmarina's default would be 127.0.0.1:6432)");
        if (port != "6432") {
            drop(port_entry->second.line, "listen_port",
                 "without listen_addr, pgmarina names its Unix socket after port 6432");
        }
    }
    // First in [pgmarina], where etc/pgmarina.toml has it.
    global_.items.insert(global_.items.begin(), Item{"listen", toml_array(listen), line});
}

// PgBouncer's "secure", a keyword offering older versions too, or a list of versions; pgmarina
// offers TLS 1.2 and 1.3 only.
void Converter::tls_protocols(const IniEntry& entry) {
    const std::string value = lower(entry.value);
    if (value == "secure") {
        global_.set(entry.key, toml_string(value), entry.line);
        return;
    }
    if (value == "all" || value == "legacy" || value == "normal" || value == "compat") {
        global_.set(entry.key, "\"secure\"", entry.line);
        notes_.push_back(entry.key + " = " + value + ": \"secure\" (TLS 1.2 and 1.3); pgmarina " +
                         "offers nothing older");
        return;
    }
    std::vector<std::string> kept;
    for (const std::string& version : split_list(value)) {
        if (version == "tlsv1.2" || version == "tlsv1.3") kept.push_back(version);
    }
    if (kept.empty()) {
        drop(entry.line, entry.key + " = " + entry.value,
             "pgmarina offers TLS 1.2 and 1.3 only; \"secure\" (both) applies");
        return;
    }
    std::string list;
    for (const std::string& version : kept)
        list += (list.empty() ? "" : ",") + version;
    if (kept.size() != split_list(value).size()) {
        notes_.push_back(entry.key + " = " + entry.value + ": \"" + list +
                         "\"; pgmarina offers nothing older than TLS 1.2");
    }
    global_.set(entry.key, toml_string(list), entry.line);
}

void Converter::global_entry(const IniEntry& entry) {
    const std::string& key = entry.key;
    const std::string& value = entry.value;
    if (key == "listen_addr" || key == "listen_port") return; // listen()
    if (key == "auth_type") {
        const std::string type = lower(value);
        if (type == "any" || type == "pam" || type == "ldap" || type == "peer") {
            drop(entry.line, "auth_type = " + type,
                 "not supported; pgmarina's auth_type is one of scram-sha-256, md5, plain, "
                 "trust, cert, hba (the default md5 applies)");
            return;
        }
        global_.set(key, toml_string(type), entry.line);
        return;
    }
    if (key == "auth_file") {
        if (input_.userlist) {
            notes_.push_back("auth_file " + value + ": its users are in [users] below, from " +
                             input_.userlist_origin);
            return;
        }
        global_.set(key, path(value, key), entry.line);
        return;
    }
    if (key == "auth_hba_file" || key.ends_with("_file")) {
        if (!key_type(global_keys(), key).empty()) {
            global_.set(key, path(value, key), entry.line);
            return;
        }
    }
    if (key == "client_tls_protocols" || key == "server_tls_protocols") {
        tls_protocols(entry);
        return;
    }
    if ((key == "client_tls_ciphers" || key == "server_tls_ciphers") &&
        (lower(value) == "secure" || lower(value) == "fast" || lower(value) == "normal" ||
         lower(value) == "legacy" || lower(value) == "all" || lower(value) == "compat")) {
        drop(entry.line, key + " = " + value,
             "PgBouncer's cipher keyword; pgmarina takes \"default\" (strong AEAD ciphers) or "
             "an OpenSSL cipher list, and uses \"default\"");
        return;
    }
    for (const auto& [name, reason] : not_carried_reasons) {
        if (name == key) {
            drop(entry.line, key, reason);
            return;
        }
    }
    const std::string type = key_type(global_keys(), key);
    if (type.empty() || type.starts_with("array of addresses")) {
        drop(entry.line, key, "pgmarina has no such setting");
        return;
    }
    global_.set(key, toml_value(type, value), entry.line);
}

void Converter::database_entry(const IniEntry& entry) {
    const std::string& name = entry.key;
    const std::string what = "[databases] " + name;
    if (name == "*") {
        drop(entry.line, what,
             "pgmarina has no fallback database; add a [databases.<name>] for each database "
             "clients use");
        return;
    }
    if (name == "pgbouncer" || name == "pgmarina") {
        drop(entry.line, what, "the name is pgmarina's admin console");
        return;
    }
    ConnString connection = parse_connection_string(entry.value);
    if (connection.error) {
        drop(entry.line, what, "the connection string cannot be read: " + *connection.error);
        return;
    }
    Section section;
    section.header = "[databases." + toml_key(name) + "]";
    section.line = entry.line;
    std::vector<std::string> hosts;
    std::vector<std::string> ports;
    std::optional<std::string> password;
    for (const ConnParam& param : connection.params) {
        const std::string& key = param.key;
        if (key == "host") {
            hosts = split_list(param.value);
        } else if (key == "port") {
            ports = split_list(param.value);
        } else if (key == "dbname" || key == "user" || key == "auth_user") {
            section.set(key, toml_string(param.value), entry.line);
        } else if (key == "password") {
            password = param.value;
        } else if (key == "pool_size" || key == "min_pool_size" || key == "max_db_connections" ||
                   key == "reserve_pool" || key == "reserve_pool_size") {
            const std::string target = key == "reserve_pool" ? "reserve_pool_size" : key;
            section.set(target, is_integer(param.value) ? param.value : toml_string(param.value),
                        entry.line);
        } else if (key == "pool_mode") {
            section.set(key, toml_string(lower(param.value)), entry.line);
        } else if (key == "auth_query" || key == "auth_dbname") {
            drop(entry.line, what + " " + key,
                 "pgmarina has " + key + " in [pgmarina] only, not per database");
        } else if (key == "client_encoding" || key == "datestyle" || key == "timezone" ||
                   key == "application_name") {
            drop(entry.line, what + " " + key,
                 "no per-database default for a server parameter; set it on the role or "
                 "database in PostgreSQL (ALTER DATABASE ... SET)");
        } else if (key == "connect_query") {
            drop(entry.line, what + " " + key, "no query runs on a new server connection");
        } else if (key == "load_balance_hosts") {
            drop(entry.line, what + " " + key,
                 "pgmarina finds the primary among hosts and balances reads with routing and "
                 "load_balance");
        } else {
            drop(entry.line, what + " " + key, "pgmarina has no such database setting");
        }
    }
    if (password) {
        if (section.has("user")) {
            section.set("password", toml_string(*password), entry.line);
        } else {
            drop(entry.line, what + " password",
                 "pgmarina uses a database's password only together with its user; put the "
                 "password in [users] or the auth_file");
        }
    }
    if (hosts.empty() || std::any_of(hosts.begin(), hosts.end(), [](const std::string& host) {
            return host.starts_with('/') || host.starts_with('@');
        })) {
        drop(entry.line, what,
             "no TCP host (PgBouncer then uses a Unix socket); pgmarina connects to servers "
             "over TCP only, so this database is not carried");
        return;
    }
    if (ports.size() > 1 && ports.size() != hosts.size()) {
        drop(entry.line, what, "port lists a number of ports that is neither 1 nor one per host");
        return;
    }
    std::vector<std::string> endpoints;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        std::string host = hosts[i];
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        const std::string port = ports.empty() ? "" : ports[ports.size() == 1 ? 0 : i];
        endpoints.push_back(port.empty() ? host : host + ":" + port);
    }
    if (hosts.size() > 1) {
        notes_.push_back(what + ": PgBouncer tries its hosts in turn; pgmarina sends writes to "
                                "whichever host is the primary (routing = \"primary_only\")");
    }
    section.items.insert(section.items.begin(), Item{"hosts", toml_array(endpoints), entry.line});
    const auto existing = std::find_if(databases_.begin(), databases_.end(), [&](const Section& s) {
        return s.header == section.header;
    });
    if (existing != databases_.end()) {
        *existing = std::move(section); // PgBouncer: the later line wins
    } else {
        databases_.push_back(std::move(section));
    }
}

Section* Converter::user_section(const std::string& name, std::uint32_t line) {
    auto [it, inserted] = user_index_.try_emplace(name, users_.size());
    if (inserted) {
        users_.push_back({"[users." + toml_key(name) + "]", line, {}});
    }
    return &users_[it->second];
}

void Converter::user_entry(const IniEntry& entry) {
    const std::string what = "[users] " + entry.key;
    ConnString settings = parse_connection_string(entry.value);
    if (settings.error) {
        drop(entry.line, what, "the settings cannot be read: " + *settings.error);
        return;
    }
    Section* section = user_section(entry.key, entry.line);
    for (const ConnParam& param : settings.params) {
        if (param.key == "pool_size" || param.key == "reserve_pool_size" ||
            param.key == "max_user_connections") {
            section->set(param.key,
                         is_integer(param.value) ? param.value : toml_string(param.value),
                         entry.line);
        } else if (param.key == "pool_mode") {
            section->set(param.key, toml_string(lower(param.value)), entry.line);
        } else {
            drop(entry.line, what + " " + param.key, "pgmarina has no such user setting");
        }
    }
}

std::string Converter::render(std::vector<std::pair<int, int>>* where) const {
    std::string out;
    auto line = [&](const std::string& text, int section, int item) {
        out += text + "\n";
        if (where != nullptr) where->emplace_back(section, item);
    };
    std::vector<const Section*> sections{&global_};
    for (const Section& s : databases_)
        sections.push_back(&s);
    for (const Section& s : users_)
        sections.push_back(&s);
    for (std::size_t s = 0; s < sections.size(); ++s) {
        if (s > 0) line("", -1, -1);
        line(sections[s]->header, static_cast<int>(s), -1);
        for (std::size_t i = 0; i < sections[s]->items.size(); ++i) {
            const Item& item = sections[s]->items[i];
            line(item.key + " = " + item.value, static_cast<int>(s), static_cast<int>(i));
        }
    }
    return out;
}

bool Converter::validate() {
    // Each round takes out at least one refused key or table, so this ends.
    for (;;) {
        std::vector<std::pair<int, int>> where;
        const std::string body = render(&where);
        LoadResult loaded = load_config_string(body, "converted");
        if (loaded.ok()) return true;
        std::vector<std::pair<int, int>> refused;
        for (const ConfigError& error : loaded.errors()) {
            if (error.line == 0 || error.line > where.size() || where[error.line - 1].first < 0) {
                errors_.push_back("the converted file does not load: " + error.to_string());
                return false;
            }
            const auto [s, i] = where[error.line - 1];
            if (s == 0 && i < 0) { // about [pgmarina] as a whole: nothing to take out
                errors_.push_back("the converted file does not load: " + error.to_string());
                return false;
            }
            if (std::find(refused.begin(), refused.end(), std::pair{s, i}) != refused.end()) {
                continue; // one entry per refused key, however many errors it has
            }
            Section& section = s == 0 ? global_
                               : static_cast<std::size_t>(s) <= databases_.size()
                                   ? databases_[s - 1]
                                   : users_[s - 1 - databases_.size()];
            if (i < 0) {
                drop(section.line, section.header, "refused by pgmarina: " + error.message);
            } else {
                const Item& item = section.items[static_cast<std::size_t>(i)];
                drop(item.line, section.header + " " + item.key,
                     "refused by pgmarina: " + error.message);
            }
            refused.emplace_back(s, i);
        }
        // Whole tables last, and items from the back, so that indexes stay valid.
        std::sort(refused.begin(), refused.end(), std::greater<>());
        for (const auto& [s, i] : refused) {
            if (i >= 0) {
                Section& section = s == 0 ? global_
                                   : static_cast<std::size_t>(s) <= databases_.size()
                                       ? databases_[s - 1]
                                       : users_[s - 1 - databases_.size()];
                section.items.erase(section.items.begin() + i);
            }
        }
        for (const auto& [s, i] : refused) {
            if (i >= 0 || s == 0) continue;
            if (static_cast<std::size_t>(s) <= databases_.size()) {
                databases_.erase(databases_.begin() + (s - 1));
            } else {
                users_.erase(users_.begin() + (s - 1 - static_cast<int>(databases_.size())));
            }
        }
    }
}

std::string Converter::header() const {
    std::string out = "# pgmarina configuration converted from " + input_.ini_origin +
                      " by `pgmarina convert-pgbouncer`.\n"
                      "# Check it with `pgmarina --check-config -c FILE`; etc/pgmarina.toml "
                      "documents every key.\n"
                      "# pgmarina also serves /metrics, /healthz and /readyz on [metrics] listen "
                      "(default 0.0.0.0:9127).\n";
    if (!notes_.empty()) {
        out += "#\n# Changed on the way:\n";
        for (const std::string& note : notes_)
            out += "#   " + note + "\n";
    }
    out += "#\n";
    if (dropped_.empty()) {
        out += "# Not carried over: nothing.\n";
    } else {
        out += "# Not carried over (" + std::to_string(dropped_.size()) + "):\n";
        for (const auto& [line, text] : dropped_)
            out += "#   " + text + "\n";
    }
    return out + "\n";
}

Conversion Converter::run() {
    const IniFile ini = parse_ini(input_.ini);
    for (const IniProblem& problem : ini.problems) {
        drop(problem.line, "line", problem.message);
    }
    for (const IniEntry& include : ini.includes) {
        drop(include.line, "%include " + include.value,
             "not followed; convert that file too and merge its keys");
    }
    std::map<std::string, IniEntry> listen_entries;
    bool pool_mode_set = false;
    for (const IniEntry& entry : ini.entries) {
        if (entry.section == "pgbouncer") {
            if (entry.key == "listen_addr" || entry.key == "listen_port") {
                listen_entries.insert_or_assign(entry.key, entry);
            }
            pool_mode_set = pool_mode_set || entry.key == "pool_mode";
            global_entry(entry);
        } else if (entry.section == "databases") {
            database_entry(entry);
        } else if (entry.section == "users") {
            user_entry(entry);
        } else if (entry.section == "peers") {
            drop(entry.line, "[peers] " + entry.key,
                 "cancel peering between instances is not carried over");
        } else {
            drop(entry.line, (entry.section.empty() ? "" : "[" + entry.section + "] ") + entry.key,
                 entry.section.empty() ? "outside any section" : "unknown section");
        }
    }
    listen(listen_entries);
    if (!pool_mode_set) {
        global_.set("pool_mode", "\"session\"", 0);
        notes_.emplace_back("pool_mode = \"session\": PgBouncer's default, written out because "
                            "pgmarina's is transaction");
    }
    if (input_.userlist) {
        AuthFileResult users = parse_auth_file(*input_.userlist, input_.userlist_origin);
        if (!users) {
            for (const ConfigError& error : users.errors())
                errors_.push_back(error.to_string());
            return {{}, {}, {}, errors_};
        }
        for (const auto& [name, secret] : users.users()) {
            user_section(name, 0)->set("password", toml_string(secret), 0);
        }
        if (!users.users().empty()) {
            notes_.push_back("[users] holds the secrets of " + input_.userlist_origin +
                             ": keep this file as private as that one");
        }
    }
    // [users] settings and userlist users in one table each, in name order.
    std::sort(users_.begin(), users_.end(),
              [](const Section& a, const Section& b) { return a.header < b.header; });
    if (!validate()) return {{}, {}, {}, errors_};

    std::stable_sort(dropped_.begin(), dropped_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    Conversion out;
    out.toml = header() + render(nullptr);
    for (const auto& [line, text] : dropped_)
        out.not_carried.push_back(text);
    out.notes = notes_;
    return out;
}

} // namespace

Conversion convert(const ConvertInput& input) {
    return Converter(input).run();
}

} // namespace proxy::pgbouncer

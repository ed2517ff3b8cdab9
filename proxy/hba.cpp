#include "proxy/hba.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace proxy {
namespace {

namespace ip = boost::asio::ip;

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// One name of a field; `quoted` when any part of it was in quotes, which makes a keyword a name.
struct Item {
    std::string text;
    bool quoted = false;
};

// A whitespace-separated field: one item, or a comma-separated list.
struct Field {
    std::vector<Item> items;
    std::uint32_t column = 0; // 1-based, of the field's first character
};

// The fields of one line, or the first problem with it.
class Line {
public:
    explicit Line(std::string_view text) : text_(text) {}

    // False, with error() set, when the line cannot be split (an unterminated quote or an empty
    // list item). A line of blanks and comments has no fields.
    bool split() {
        while (true) {
            skip_blanks();
            if (pos_ == text_.size() || text_[pos_] == '#') return true;
            Field field{{}, column()};
            bool more = true;
            while (more) {
                const std::uint32_t item_column = column();
                Item item;
                if (!read_item(item)) return false;
                if (item.text.empty() && !item.quoted) {
                    return fail(item_column, "empty name in a comma-separated list");
                }
                field.items.push_back(std::move(item));
                more = pos_ < text_.size() && text_[pos_] == ',';
                if (more) {
                    ++pos_;
                    // PostgreSQL allows blanks after a comma: `app, reports` is one list.
                    skip_blanks();
                }
            }
            fields.push_back(std::move(field));
        }
    }

    std::vector<Field> fields;
    std::uint32_t error_column = 0;
    std::string error;

private:
    void skip_blanks() {
        while (pos_ < text_.size() && is_blank(text_[pos_]))
            ++pos_;
    }

    std::uint32_t column() const { return static_cast<std::uint32_t>(pos_ + 1); }

    bool fail(std::uint32_t at, std::string message) {
        error_column = at;
        error = std::move(message);
        return false;
    }

    // Reads up to an unquoted blank, comma or '#'. Quotes may cover any part of the item.
    bool read_item(Item& item) {
        const std::uint32_t start = column();
        bool in_quotes = false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == '"') {
                if (in_quotes && pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
                    item.text.push_back('"');
                    pos_ += 2;
                    continue;
                }
                in_quotes = !in_quotes;
                item.quoted = true;
                ++pos_;
                continue;
            }
            if (!in_quotes && (is_blank(c) || c == ',' || c == '#')) break;
            item.text.push_back(c);
            ++pos_;
        }
        if (in_quotes) return fail(start, "unterminated quoted string");
        return true;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

// Turns one line's fields into a rule; collects what is wrong with it.
class RuleParser {
public:
    RuleParser(std::vector<Field> fields, std::uint32_t line) : fields_(std::move(fields)) {
        rule_.line = line;
    }

    // The rule, or nullopt with error()/error_column set.
    std::optional<HbaRule> parse() {
        if (!parse_type() || !parse_names(rule_.databases, "database", true) ||
            !parse_names(rule_.users, "role", false)) {
            return std::nullopt;
        }
        if (rule_.type != HbaRule::Type::local && !parse_address()) return std::nullopt;
        if (!parse_method()) return std::nullopt;
        if (next_ < fields_.size()) {
            const Item& option = fields_[next_].items.front();
            // Options such as clientcert and map narrow who may log in: ignoring them would let
            // in clients the line is meant to keep out.
            fail(fields_[next_].column,
                 "authentication options are not supported (\"" + option.text + "\")");
            return std::nullopt;
        }
        return rule_;
    }

    std::uint32_t error_column = 0;
    std::string error;

private:
    bool fail(std::uint32_t column, std::string message) {
        error_column = column;
        error = std::move(message);
        return false;
    }

    // The next field, which must hold one value; nullptr (with the error set) otherwise.
    // `what` names the field in PostgreSQL's words.
    const Item* single(std::string_view what) {
        if (next_ == fields_.size()) {
            const std::uint32_t end = fields_.back().column;
            fail(end, "end-of-line before " + std::string(what) + " specification");
            return nullptr;
        }
        const Field& field = fields_[next_];
        if (field.items.size() != 1) {
            fail(field.column, "multiple values specified for " + std::string(what));
            return nullptr;
        }
        ++next_;
        return &field.items.front();
    }

    std::uint32_t column() const { return fields_[next_ - 1].column; }

    bool parse_type() {
        const Item* type = single("connection type");
        if (!type) return false;
        const std::string& text = type->text;
        if (text == "local") {
            rule_.type = HbaRule::Type::local;
        } else if (text == "host") {
            rule_.type = HbaRule::Type::host;
        } else if (text == "hostssl") {
            rule_.type = HbaRule::Type::hostssl;
        } else if (text == "hostnossl") {
            rule_.type = HbaRule::Type::hostnossl;
        } else if (text == "hostgssenc" || text == "hostnogssenc") {
            return fail(column(), "connection type \"" + text +
                                      "\" is not supported: pgmarina has no GSSAPI encryption");
        } else {
            return fail(column(), "invalid connection type \"" + text + "\"");
        }
        return true;
    }

    bool parse_names(HbaRule::Names& names, std::string_view what, bool database) {
        if (next_ == fields_.size()) {
            return fail(fields_.back().column,
                        "end-of-line before " + std::string(what) + " specification");
        }
        const Field& field = fields_[next_++];
        for (const Item& item : field.items) {
            const std::string& text = item.text;
            if (!item.quoted && text == "all") {
                names.all = true;
            } else if (!item.quoted && database && text == "sameuser") {
                names.same_user = true;
            } else if (!item.quoted && database && (text == "samerole" || text == "samegroup")) {
                return fail(field.column, "\"" + text +
                                              "\" is not supported: pgmarina does not know role "
                                              "membership");
            } else if (!item.quoted && database && text == "replication") {
                // Matches replication connections only, and pgmarina accepts none.
            } else if (!item.quoted && !database && text.starts_with('+')) {
                return fail(field.column, "group names (\"" + text +
                                              "\") are not supported: pgmarina does not know "
                                              "role membership");
            } else if (!item.quoted && text.starts_with('@')) {
                return fail(field.column,
                            "file inclusion (\"" + text + "\") is not supported; list the names");
            } else if (!item.quoted && text.starts_with('/')) {
                return fail(field.column, "regular expressions (\"" + text +
                                              "\") are not supported; quote the name to use it "
                                              "as written");
            } else {
                names.names.push_back(text);
            }
        }
        return true;
    }

    bool parse_address() {
        const Item* item = single("IP address");
        if (!item) return false;
        const std::string& text = item->text;
        const std::uint32_t at = column();
        if (!item->quoted && text == "all") return true;
        if (!item->quoted && (text == "samehost" || text == "samenet")) {
            return fail(at, "\"" + text +
                                "\" is not supported: pgmarina does not read the server's "
                                "interfaces; write the addresses");
        }
        const auto slash = text.find('/');
        const std::string address_text = text.substr(0, slash);
        boost::system::error_code ec;
        const ip::address address = ip::make_address(address_text, ec);
        if (ec) {
            const bool looks_numeric =
                slash != std::string::npos ||
                std::all_of(address_text.begin(), address_text.end(),
                            [](char c) { return is_digit(c) || c == '.' || c == ':'; });
            if (looks_numeric) return fail(at, "invalid IP address \"" + text + "\"");
            return fail(at, "host names (\"" + text +
                                "\") are not supported: pgmarina does not resolve them; write an "
                                "IP address with a mask");
        }
        HbaRule::Network network = network_of(address);
        const unsigned width = network.v6 ? 128 : 32;
        if (slash != std::string::npos) {
            const std::string_view prefix = std::string_view(text).substr(slash + 1);
            if (prefix.empty() || prefix.size() > 3 ||
                !std::all_of(prefix.begin(), prefix.end(), is_digit)) {
                return fail(at, "invalid CIDR mask in address \"" + text + "\"");
            }
            const unsigned bits = static_cast<unsigned>(std::stoul(std::string(prefix)));
            if (bits > width) return fail(at, "invalid CIDR mask in address \"" + text + "\"");
            for (unsigned bit = 0; bit < bits; ++bit)
                network.mask[bit / 8] |= static_cast<unsigned char>(0x80u >> (bit % 8));
        } else if (!parse_netmask(network)) {
            return false;
        }
        for (std::size_t i = 0; i < network.address.size(); ++i)
            network.address[i] &= network.mask[i];
        rule_.network = network;
        return true;
    }

    // The NETMASK column after an address written without /n.
    bool parse_netmask(HbaRule::Network& network) {
        const Item* item = single("netmask");
        if (!item) return false;
        boost::system::error_code ec;
        const ip::address mask = ip::make_address(item->text, ec);
        if (ec) return fail(column(), "invalid IP mask \"" + item->text + "\"");
        const HbaRule::Network parsed = network_of(mask);
        if (parsed.v6 != network.v6) {
            return fail(column(), "IP address and mask \"" + item->text + "\" do not match");
        }
        // Contiguous: no one bit after the first zero bit.
        bool zero_seen = false;
        for (unsigned char byte : parsed.address) {
            for (unsigned bit = 0; bit < 8; ++bit) {
                const bool one = (byte & (0x80u >> bit)) != 0;
                if (one && zero_seen) {
                    return fail(column(), "invalid IP mask \"" + item->text +
                                              "\": its one bits must come first");
                }
                zero_seen = zero_seen || !one;
            }
        }
        network.mask = parsed.address;
        return true;
    }

    static HbaRule::Network network_of(const ip::address& address) {
        HbaRule::Network network;
        network.v6 = address.is_v6();
        if (address.is_v4()) {
            const auto bytes = address.to_v4().to_bytes();
            std::copy(bytes.begin(), bytes.end(), network.address.begin());
        } else {
            const auto bytes = address.to_v6().to_bytes();
            std::copy(bytes.begin(), bytes.end(), network.address.begin());
        }
        return network;
    }

    bool parse_method() {
        const Item* item = single("authentication method");
        if (!item) return false;
        const std::string& text = item->text;
        if (text == "trust") {
            rule_.method = AuthType::trust;
        } else if (text == "reject") {
            rule_.method = std::nullopt;
        } else if (text == "md5") {
            rule_.method = AuthType::md5;
        } else if (text == "password") {
            rule_.method = AuthType::plain;
        } else if (text == "scram-sha-256") {
            rule_.method = AuthType::scram_sha_256;
        } else if (text == "cert") {
            if (rule_.type != HbaRule::Type::hostssl) {
                return fail(column(), "cert authentication is only supported on hostssl "
                                      "connections");
            }
            rule_.method = AuthType::cert;
        } else if (text == "peer" || text == "ident" || text == "ldap" || text == "pam" ||
                   text == "radius" || text == "gss" || text == "sspi" || text == "bsd") {
            return fail(column(),
                        "authentication method \"" + text + "\" is not supported by pgmarina");
        } else {
            return fail(column(), "invalid authentication method \"" + text + "\"");
        }
        return true;
    }

    std::vector<Field> fields_;
    std::size_t next_ = 0;
    HbaRule rule_;
};

bool names_match(const HbaRule::Names& names, std::string_view name) {
    return names.all ||
           std::find(names.names.begin(), names.names.end(), name) != names.names.end();
}

bool network_matches(const HbaRule::Network& network, ip::address address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = ip::make_address_v4(ip::v4_mapped, address.to_v6());
    }
    if (address.is_v6() != network.v6) return false;
    std::array<unsigned char, 16> bytes{};
    if (address.is_v4()) {
        const auto v4 = address.to_v4().to_bytes();
        std::copy(v4.begin(), v4.end(), bytes.begin());
    } else {
        bytes = address.to_v6().to_bytes();
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if ((bytes[i] & network.mask[i]) != network.address[i]) return false;
    }
    return true;
}

} // namespace

bool HbaRule::matches(const HbaConnection& connection) const {
    switch (type) {
    case Type::local:
        if (!connection.local) return false;
        break;
    case Type::host:
        if (connection.local) return false;
        break;
    case Type::hostssl:
        if (connection.local || !connection.tls) return false;
        break;
    case Type::hostnossl:
        if (connection.local || connection.tls) return false;
        break;
    }
    const bool database_matches = names_match(databases, connection.database) ||
                                  (databases.same_user && connection.database == connection.user);
    if (!database_matches || !names_match(users, connection.user)) return false;
    if (!network) return true;
    return connection.address && network_matches(*network, *connection.address);
}

HbaDecision HbaRules::decide(const HbaConnection& connection) const {
    for (const HbaRule& rule : rules_) {
        if (rule.matches(connection)) return HbaDecision{rule.method, rule.line};
    }
    return HbaDecision{};
}

std::string hba_refusal(const HbaConnection& connection, const HbaDecision& decision) {
    const std::string host =
        connection.local ? "[local]"
                         : (connection.address ? connection.address->to_string() : "unknown");
    const std::string lead = decision.line == 0 ? "no pg_hba.conf entry for host"
                                                : "pg_hba.conf rejects connection for host";
    return lead + " \"" + host + "\", user \"" + std::string(connection.user) + "\", database \"" +
           std::string(connection.database) + "\", " +
           (connection.tls ? "SSL encryption" : "no encryption");
}

HbaFileResult::HbaFileResult(HbaRules rules) : rules_(std::move(rules)) {}

HbaFileResult::HbaFileResult(std::vector<ConfigError> errors) : errors_(std::move(errors)) {}

HbaFileResult parse_hba(std::string_view text, std::string_view origin) {
    std::vector<HbaRule> rules;
    std::vector<ConfigError> errors;
    std::uint32_t number = 0;
    while (!text.empty()) {
        ++number;
        const std::size_t end = text.find('\n');
        Line line(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (!line.split()) {
            errors.push_back(
                ConfigError{std::string(origin), number, line.error_column, line.error});
            continue;
        }
        if (line.fields.empty()) continue;
        RuleParser parser(std::move(line.fields), number);
        if (auto rule = parser.parse()) {
            rules.push_back(std::move(*rule));
        } else {
            errors.push_back(
                ConfigError{std::string(origin), number, parser.error_column, parser.error});
        }
    }
    if (!errors.empty()) return HbaFileResult(std::move(errors));
    return HbaFileResult(HbaRules(std::move(rules)));
}

HbaFileResult load_hba_file(const std::filesystem::path& path) {
    auto text = read_config_file(path);
    if (!text) return HbaFileResult(std::vector{text.error()});
    return parse_hba(*text, path.string());
}

} // namespace proxy

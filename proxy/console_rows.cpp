#include "proxy/console_rows.hpp"

#include <algorithm>
#include <ctime>

namespace proxy {

Table make_table(const std::vector<std::string>& names,
                 std::initializer_list<std::string_view> text_columns) {
    Table table;
    for (const auto& name : names) {
        const bool text = std::ranges::find(text_columns, name) != text_columns.end();
        table.columns.push_back({name, text ? ColumnType::text : ColumnType::int8});
    }
    return table;
}

std::int64_t seconds(Duration duration) {
    return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

std::string timestamp(std::chrono::system_clock::time_point at) {
    const std::time_t time = std::chrono::system_clock::to_time_t(at);
    std::tm utc{};
    gmtime_r(&time, &utc);
    char text[32];
    const auto length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
    return std::string(text, length);
}

Cell load_balance_hosts(const Config& config, std::string_view database) {
    const auto found = config.databases.find(database);
    if (found == config.databases.end() || found->second.hosts.size() < 2) return std::nullopt;
    return std::string(to_string(found->second.routing));
}

std::string plain_setting(std::string toml) {
    if (toml.size() >= 2 && toml.front() == '"' && toml.back() == '"') {
        return toml.substr(1, toml.size() - 2);
    }
    return toml;
}

} // namespace proxy

#include "proxy/reload.hpp"

#include "proxy/log.hpp"
#include "proxy/runtime.hpp"
#include "proxy/settings.hpp"
#include "proxy/tls_context.hpp"

#include <toml++/toml.h>

namespace proxy {
namespace {

// Puts `config` in force; notices name what waits for a restart.
AdminOutcome apply(Runtime& runtime, std::shared_ptr<const Config> config, std::string tag) {
    auto loaded = load_files(*config);
    if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
        std::string message = "configuration not changed:";
        for (const auto& error : *errors)
            message += "\n" + error;
        return AdminError{"F0000", message};
    }
    auto& files = std::get<ConfigFiles>(loaded);
    const auto old = runtime.config();
    AdminReply reply{std::nullopt, std::move(tag), {}};
    for (const auto& key : global_keys()) {
        if (key.spec.reload == Reload::restart &&
            key.format(old->settings) != key.format(config->settings)) {
            reply.notices.push_back(std::string(key.spec.name) +
                                    " changed: takes effect after a restart");
        }
    }
    if (old->metrics != config->metrics) {
        reply.notices.emplace_back("[metrics] changed: takes effect after a restart");
    }
    runtime.replace_config(std::move(config), std::move(files.users), std::move(files.hba));
    runtime.tls.replace(std::move(files.tls));
    for (const auto& notice : reply.notices)
        log::warning(notice);
    return reply;
}

// `value` as SET wrote it, as the TOML value the settings table decodes: a TOML literal
// (number, boolean, array) when it is one, else a string.
toml::table value_as_toml(const std::string& value) {
    try {
        auto parsed = toml::parse("v = " + value);
        if (parsed.contains("v") && parsed.size() == 1) return parsed;
    } catch (const toml::parse_error&) {
        // Not a TOML literal: a bare word such as `transaction`.
    }
    toml::table quoted;
    quoted.insert("v", value);
    return quoted;
}

} // namespace

std::variant<ConfigFiles, std::vector<std::string>> load_files(const Config& config) {
    ConfigFiles files;
    std::vector<std::string> errors;
    const auto add_errors = [&errors](const std::vector<ConfigError>& found) {
        for (const auto& error : found)
            errors.push_back(error.to_string());
    };
    files.users = std::make_shared<const AuthUsers>();
    if (!config.settings.auth_file.empty()) {
        auto loaded = load_auth_file(config.settings.auth_file);
        if (loaded) {
            files.users = std::make_shared<const AuthUsers>(loaded.users());
        } else {
            add_errors(loaded.errors());
        }
    }
    files.hba = std::make_shared<const HbaRules>();
    if (config.settings.auth_type == AuthType::hba) {
        auto loaded = load_hba_file(config.settings.auth_hba_file);
        if (loaded) {
            files.hba = std::make_shared<const HbaRules>(loaded.rules());
        } else {
            add_errors(loaded.errors());
        }
    }
    auto tls = make_tls_contexts(config.settings);
    if (tls) {
        files.tls = std::move(*tls);
    } else {
        errors.push_back(tls.error());
    }
    if (!errors.empty()) return errors;
    return files;
}

AdminOutcome reload(Runtime& runtime) {
    const auto source = runtime.config()->source;
    if (source.empty())
        return AdminError{"F0000", "no configuration file to reload (started without -c)"};
    auto loaded = load_config(source);
    if (!loaded) {
        std::string message = "configuration not changed:";
        for (const auto& error : loaded.errors())
            message += "\n" + error.to_string();
        return AdminError{"F0000", message};
    }
    return apply(runtime, loaded.config(), "RELOAD");
}

AdminOutcome set_setting(Runtime& runtime, const std::string& key, const std::string& value) {
    for (const auto& info : global_keys()) {
        if (info.spec.name != key) continue;
        if (info.spec.reload == Reload::restart) {
            return AdminError{"55P02", key + " cannot be changed without a restart"};
        }
        auto config = std::make_shared<Config>(*runtime.config());
        const auto document = value_as_toml(value);
        Diagnostics diag{"SET"};
        info.decode(config->settings, *document.get("v"), info.spec, diag);
        if (!diag.empty()) {
            std::string message;
            for (const auto& error : diag.take())
                message += (message.empty() ? "" : "; ") + error.message;
            return AdminError{"22023", message};
        }
        return apply(runtime, std::move(config), "SET");
    }
    return AdminError{"42704", "unknown setting: " + key};
}

} // namespace proxy

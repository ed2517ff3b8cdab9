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
    auto users = load_users(*config);
    auto hba = load_hba_rules(*config);
    std::vector<std::string> errors;
    for (auto* failed : {std::get_if<std::vector<std::string>>(&users),
                         std::get_if<std::vector<std::string>>(&hba)}) {
        if (failed) errors.insert(errors.end(), failed->begin(), failed->end());
    }
    if (!errors.empty()) {
        std::string message = "configuration not changed:";
        for (const auto& error : errors)
            message += "\n" + error;
        return AdminError{"F0000", message};
    }
    // Built again even when the settings did not change: the files may hold new certificates.
    auto tls = make_tls_contexts(config->settings);
    if (!tls) return AdminError{"F0000", "configuration not changed:\n" + tls.error()};
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
    runtime.replace_config(std::move(config),
                           std::get<std::shared_ptr<const AuthUsers>>(std::move(users)),
                           std::get<std::shared_ptr<const HbaRules>>(std::move(hba)));
    runtime.tls.replace(std::move(*tls));
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

std::variant<std::shared_ptr<const AuthUsers>, std::vector<std::string>>
load_users(const Config& config) {
    if (config.settings.auth_file.empty()) return std::make_shared<const AuthUsers>();
    auto loaded = load_auth_file(config.settings.auth_file);
    if (!loaded) {
        std::vector<std::string> errors;
        for (const auto& error : loaded.errors())
            errors.push_back(error.to_string());
        return errors;
    }
    return std::make_shared<const AuthUsers>(loaded.users());
}

std::variant<std::shared_ptr<const HbaRules>, std::vector<std::string>>
load_hba_rules(const Config& config) {
    if (config.settings.auth_type != AuthType::hba) return std::make_shared<const HbaRules>();
    auto loaded = load_hba_file(config.settings.auth_hba_file);
    if (!loaded) {
        std::vector<std::string> errors;
        for (const auto& error : loaded.errors())
            errors.push_back(error.to_string());
        return errors;
    }
    return std::make_shared<const HbaRules>(loaded.rules());
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

// pgmarina's command line: parse the arguments, load and validate the configuration, then hand it
// to proxy::run. Nothing else happens here.
//
// Exit status: 0 success, 1 configuration error, 2 usage error (as documented in --help).
#include "pgmarina_version.hpp"
#include "proxy/config.hpp"
#include "proxy/reload.hpp"
#include "proxy/server.hpp"

#include <filesystem>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_config_error = 1;
constexpr int exit_usage_error = 2;

constexpr std::string_view usage_text = R"(Usage: pgmarina [OPTION]...
A transaction-pooling proxy for PostgreSQL.

Options:
  -c, --config FILE     read the configuration from FILE (TOML); without this option
                        pgmarina uses the built-in defaults, which define no databases
      --check-config    validate the configuration, print "configuration OK: FILE"
                        and exit without starting
      --print-settings  print the settings reference as Markdown and exit
  -V, --version         print the version and exit
  -h, --help            print this help and exit

Exit status: 0 success, 1 configuration error, 2 usage error.
)";

enum class Action {
    run,
    check_config,
    print_settings,
    help,
    version,
};

struct Options {
    Action action = Action::run;
    std::optional<std::filesystem::path> config_file;
};

struct UsageError {
    std::string message;
};

std::variant<Options, UsageError> parse_arguments(std::span<char* const> args) {
    Options options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::optional<std::string_view> file;
        if (arg == "-h" || arg == "--help") {
            options.action = Action::help;
            return options;
        }
        if (arg == "-V" || arg == "--version") {
            options.action = Action::version;
            return options;
        }
        if (arg == "--check-config" || arg == "--print-settings") {
            auto action = arg == "--check-config" ? Action::check_config : Action::print_settings;
            if (options.action != Action::run && options.action != action) {
                return UsageError{"--check-config and --print-settings cannot be combined"};
            }
            options.action = action;
            continue;
        }
        if (arg == "-c" || arg == "--config") {
            if (i + 1 == args.size()) {
                return UsageError{"option '" + std::string(arg) + "' needs a FILE argument"};
            }
            file = args[++i];
        } else if (arg.starts_with("--config=")) {
            file = arg.substr(std::string_view("--config=").size());
        } else if (arg.starts_with("-")) {
            return UsageError{"unknown option '" + std::string(arg) + "'"};
        } else {
            return UsageError{"unexpected argument '" + std::string(arg) +
                              "'; give the configuration file with -c FILE"};
        }
        if (file->empty()) {
            return UsageError{"option '" + std::string(arg) + "' needs a FILE argument"};
        }
        if (options.config_file) {
            return UsageError{"the configuration file is given twice (-c/--config)"};
        }
        options.config_file = std::filesystem::path(*file);
    }
    return options;
}

// Prints every problem and the summary line; the exit status for them.
int refuse_configuration(const std::vector<std::string>& errors) {
    for (const auto& error : errors)
        std::cerr << error << '\n';
    std::cerr << "pgmarina: configuration not loaded (" << errors.size()
              << (errors.size() == 1 ? " error)\n" : " errors)\n");
    return exit_config_error;
}

int load_and_run(const Options& options) {
    proxy::LoadResult loaded = options.config_file ? proxy::load_config(*options.config_file)
                                                   : proxy::LoadResult(proxy::default_config());
    if (!loaded) {
        std::vector<std::string> errors;
        for (const proxy::ConfigError& error : loaded.errors())
            errors.push_back(error.to_string());
        return refuse_configuration(errors);
    }
    if (options.action == Action::check_config) {
        // The files it names too (auth_file, auth_hba_file, TLS certificates and keys), as
        // startup would read them.
        const auto files = proxy::load_files(*loaded.config());
        if (const auto* errors = std::get_if<std::vector<std::string>>(&files)) {
            return refuse_configuration(*errors);
        }
        std::cout << "configuration OK: "
                  << (options.config_file ? options.config_file->string() : "built-in defaults")
                  << '\n';
        return exit_ok;
    }
    return proxy::run(loaded.config());
}

} // namespace

int main(int argc, char* argv[]) {
    auto parsed = parse_arguments(
        std::span<char* const>(argv, static_cast<std::size_t>(argc)).subspan(argc > 0 ? 1 : 0));
    if (const auto* error = std::get_if<UsageError>(&parsed)) {
        std::cerr << "pgmarina: " << error->message << "\n"
                  << "Try 'pgmarina --help' for more information.\n";
        return exit_usage_error;
    }
    const auto& options = std::get<Options>(parsed);
    switch (options.action) {
    case Action::help:
        std::cout << usage_text;
        return exit_ok;
    case Action::version:
        std::cout << "pgmarina " << PGMARINA_VERSION << '\n';
        return exit_ok;
    case Action::print_settings:
        std::cout << proxy::settings_reference_markdown();
        return exit_ok;
    case Action::check_config:
    case Action::run:
        break;
    }
    return load_and_run(options);
}

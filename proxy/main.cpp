// pgmarina's command line: parse the arguments, load and validate the configuration, then hand it
// to proxy::run. Nothing else happens here.
//
// Exit status: 0 success, 1 configuration error, 2 usage error (as documented in --help).
// `pgmarina convert-pgbouncer` is the one subcommand: it converts a PgBouncer configuration.
#include "pgmarina_version.hpp"
#include "proxy/config.hpp"
#include "proxy/pgbouncer_convert.hpp"
#include "proxy/reload.hpp"
#include "proxy/server.hpp"

#include <filesystem>
#include <fstream>
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
       pgmarina convert-pgbouncer [-o FILE] PGBOUNCER_INI [USERLIST]
A transaction-pooling proxy for PostgreSQL.

convert-pgbouncer writes the pgmarina.toml equivalent to a pgbouncer.ini to standard output
(or FILE); with USERLIST, its users and secrets go into [users] instead of naming auth_file.
What has no counterpart is listed on standard error and as comments atop the output.

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

int usage_error(const std::string& message) {
    std::cerr << "pgmarina: " << message << "\n"
              << "Try 'pgmarina --help' for more information.\n";
    return exit_usage_error;
}

// pgmarina convert-pgbouncer [-o FILE] PGBOUNCER_INI [USERLIST]
int convert_pgbouncer(std::span<char* const> args) {
    std::optional<std::filesystem::path> output;
    std::vector<std::filesystem::path> files;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "-o" || arg == "--output") {
            if (i + 1 == args.size() || std::string_view(args[i + 1]).empty()) {
                return usage_error("option '" + std::string(arg) + "' needs a FILE argument");
            }
            output = std::filesystem::path(args[++i]);
        } else if (arg.starts_with("-") && arg != "-") {
            return usage_error("unknown option '" + std::string(arg) + "' of convert-pgbouncer");
        } else {
            files.emplace_back(arg);
        }
    }
    if (files.empty() || files.size() > 2) {
        return usage_error("convert-pgbouncer takes a pgbouncer.ini and optionally a userlist.txt");
    }
    auto ini = proxy::read_config_file(files[0]);
    if (!ini) return refuse_configuration({ini.error().to_string()});
    proxy::pgbouncer::ConvertInput input;
    input.ini = *ini;
    input.ini_origin = files[0].string();
    std::error_code ec;
    input.base_directory = std::filesystem::absolute(files[0], ec).parent_path();
    std::string userlist;
    if (files.size() == 2) {
        auto read = proxy::read_config_file(files[1]);
        if (!read) return refuse_configuration({read.error().to_string()});
        userlist = std::move(*read);
        input.userlist = userlist;
        input.userlist_origin = files[1].string();
    }
    const proxy::pgbouncer::Conversion conversion = proxy::pgbouncer::convert(input);
    if (!conversion.errors.empty()) return refuse_configuration(conversion.errors);
    for (const std::string& item : conversion.not_carried)
        std::cerr << "pgmarina: not carried over: " << item << '\n';
    if (output) {
        std::ofstream out(*output, std::ios::binary | std::ios::trunc);
        out << conversion.toml;
        out.close();
        if (!out) {
            std::cerr << "pgmarina: cannot write " << output->string() << '\n';
            return exit_config_error;
        }
    } else {
        std::cout << conversion.toml;
    }
    return exit_ok;
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc > 1 && std::string_view(argv[1]) == "convert-pgbouncer") {
        return convert_pgbouncer(
            std::span<char* const>(argv, static_cast<std::size_t>(argc)).subspan(2));
    }
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

#include "proxy/startup_request.hpp"

#include <doctest/doctest.h>

#include <string>
#include <variant>

namespace {

using proxy::AcceptedStartup;
using proxy::StartupRefused;
using wire::fe::Parameter;
using wire::fe::StartupMessage;

proxy::Config config() {
    proxy::Config c;
    proxy::DatabaseConfig app;
    app.hosts = {proxy::Endpoint{"127.0.0.1", 5432}};
    c.databases.emplace("app", app);
    c.settings.ignore_startup_parameters = {"extra_float_digits"};
    return c;
}

StartupMessage startup(std::vector<Parameter> parameters, std::uint16_t minor = 0) {
    return StartupMessage{{3, minor}, std::move(parameters)};
}

std::string refusal(const StartupMessage& message) {
    const auto decision = proxy::decide_startup(message, config());
    const auto* refused = std::get_if<StartupRefused>(&decision);
    return refused != nullptr ? refused->sqlstate + " " + refused->reason : "accepted";
}

} // namespace

TEST_SUITE("proxy.startup_request") {
    TEST_CASE("a user and a configured database are accepted; the database defaults to the user") {
        auto decision = proxy::decide_startup(
            startup({{"user", "alice"}, {"database", "app"}, {"application_name", "psql"}}),
            config());
        const auto& accepted = std::get<AcceptedStartup>(decision);
        CHECK(accepted.user == "alice");
        CHECK(accepted.database == "app");
        CHECK(accepted.application_name == "psql");
        CHECK(!accepted.negotiate);
        CHECK(refusal(startup({{"user", "app"}})) == "accepted");
        CHECK(refusal(startup({{"user", "admin"}, {"database", "pgbouncer"}})) == "accepted");
    }

    TEST_CASE("refusals carry PostgreSQL's SQLSTATEs") {
        CHECK(refusal(startup({{"database", "app"}})) ==
              "28000 no PostgreSQL user name specified in startup packet");
        CHECK(refusal(startup({{"user", "alice"}, {"database", "nope"}})) ==
              "3D000 no such database: nope");
        CHECK(refusal(startup({{"user", "alice"}, {"database", "app"}, {"work_mem", "1GB"}})) ==
              "08P01 unsupported startup parameter: work_mem");
        CHECK(refusal(
                  startup({{"user", "alice"}, {"database", "app"}, {"EXTRA_FLOAT_DIGITS", "3"}})) ==
              "accepted");
    }

    TEST_CASE("a newer minor version or a _pq_ option asks for NegotiateProtocolVersion") {
        auto decision = proxy::decide_startup(
            startup({{"user", "alice"}, {"database", "app"}, {"_pq_.x", "1"}}), config());
        CHECK(std::get<AcceptedStartup>(decision).negotiate);
        CHECK(std::get<AcceptedStartup>(decision).unrecognized_options ==
              std::vector<std::string>{"_pq_.x"});
        decision =
            proxy::decide_startup(startup({{"user", "alice"}, {"database", "app"}}, 2), config());
        CHECK(std::get<AcceptedStartup>(decision).negotiate);
    }
}

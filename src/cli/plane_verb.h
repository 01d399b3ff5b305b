// Private to src/cli: what every verb that talks to the plane shares.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "cli/plane_client.h"

namespace cce::cli {

// The verb's work: gets the parsed flags, a connected client and whether
// --output json was asked; returns the JSON printed with --output json.
using PlaneBody =
    std::function<StatusOr<nlohmann::json>(const ParsedFlags& f, PlaneClient& c, bool json_out)>;

// Parses flags (with `positional` arguments), loads the client config,
// connects, runs `body`, prints its JSON when asked; returns the exit code.
int WithPlane(const FlagParser& p, const Args& args, size_t positional, const PlaneBody& body);

// "2026-11-26 01:25:11Z" (UTC).
std::string FormatTime(int64_t unix);

}  // namespace cce::cli

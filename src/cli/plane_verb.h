// Private to src/cli: what every verb that talks to the plane shares.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/wire.h"
#include "cli/command.h"
#include "cli/plane_client.h"

namespace cce::cli {

// The verb's work: gets the parsed flags, a connected client and whether
// --output json was asked; returns the JSON printed with --output json.
using PlaneBody =
    std::function<StatusOr<nlohmann::json>(const ParsedFlags& f, PlaneClient& c, bool json_out)>;

// Parses flags (with `positional` arguments), loads the client config,
// connects, runs `body`, prints its JSON when asked; returns the exit code.
// The JSON printed: an object as one line; an array (a list command's
// items) as JSON Lines, one line per element, nothing for an empty list.
int WithPlane(const FlagParser& p, const Args& args, size_t positional, const PlaneBody& body);

// Decodes the plane's answer to `request` ("GET /api/v1/jobs/job-1") into its
// wire type, ignoring fields this CLI does not know (a newer plane). One that
// does not decode is the plane's fault, not the user's: kInternal (exit 1),
// "the plane's response to GET /api/v1/jobs/job-1: response.state: expected a
// string".
template <typename T>
StatusOr<T> DecodeResponse(const nlohmann::json& response, std::string_view request) {
  T out;
  Status s = api::FromJson(response, &out, api::Decode::kLenient, "response");
  if (!s.ok()) {
    return Internal("the plane's response to " + std::string(request) + ": " + s.message());
  }
  return out;
}

// "2026-11-26 01:25:11Z" (UTC).
std::string FormatTime(int64_t unix);

// A list response's items for --output json (JSON Lines): r[key], or an
// empty array when the plane sent none.
nlohmann::json ListItems(const nlohmann::json& r, const char* key);

// A list command's page was full: tells on stderr how to ask for the next
// one ("cce: more jobs may follow: cce job list --offset 1000"), in text and
// JSON mode alike (the JSON Lines stay items only).
void NoteNextPage(const std::string& what, const std::string& next_command);

}  // namespace cce::cli

// `cce explore ...`: Explore sessions on the plane (docs/explore/sessions.md):
// start one over the samples of datasets you rent, list them, get a fresh
// one-time login link, stop one. Text by default, one JSON object with
// --output json.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <iostream>

#include "api/wire.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/table.h"

extern char** environ;

namespace cce::cli {
namespace {

using nlohmann::json;

// "90s", "30m", "2h" or a number of seconds.
StatusOr<int64_t> ParseDuration(const std::string& flag, const std::string& text) {
  const auto bad = InvalidArgument("--" + flag + " '" + text.substr(0, 32) +
                                   "': expected a duration like 30m, 2h or 900s");
  if (text.empty()) return bad;
  int64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 's': digits.remove_suffix(1); break;
    case 'm':
      unit = 60;
      digits.remove_suffix(1);
      break;
    case 'h':
      unit = 3600;
      digits.remove_suffix(1);
      break;
    default: break;
  }
  int64_t n = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || n <= 0 ||
      n > int64_t{30} * 86400 / unit) {
    return bad;
  }
  return n * unit;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string part =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void AddSession(Table& t, const api::ExploreSession& x) {
  std::string datasets;
  for (size_t i = 0; i < x.datasets.size(); ++i) {
    datasets += (i ? "," : "") + x.datasets[i].name + "@v" +
                std::to_string(x.datasets[i].sample_version);
  }
  t.AddRow({x.id, x.state, datasets, std::to_string(x.idle_timeout_seconds / 60) + " min",
            FormatTime(x.created_at), x.stop_reason});
}

// A one-time login URL for session `id`.
StatusOr<api::ExploreLogin> NewLogin(PlaneClient& c, const std::string& id) {
  const std::string path = "/api/v1/explore/sessions/" + id + "/login";
  ASSIGN_OR_RETURN(json r, c.Post(path, json::object()));
  return DecodeResponse<api::ExploreLogin>(r, "POST " + path);
}

// Runs xdg-open URL when it is installed (without a shell; not waited for
// beyond its own exit, which is immediate for a desktop handler).
Status OpenInBrowser(const std::string& url) {
  std::string prog = "xdg-open";
  char* argv[] = {prog.data(), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "xdg-open", nullptr, nullptr, argv, environ);
  if (rc != 0) {
    return FailedPrecondition("--browser: xdg-open is not available (" +
                              std::string(std::strerror(rc)) + "); open the URL yourself");
  }
  int status = 0;
  (void)::waitpid(pid, &status, 0);
  return Status::Ok();
}

std::string CheckId(const std::string& id) {
  return id.size() == 19 && id.rfind("xs-", 0) == 0
             ? ""
             : "session id '" + id.substr(0, 40) + "': expected xs- and 16 hex digits";
}

int Start(const Args& args) {
  FlagParser p("cce explore start [--datasets A,B] [--idle-timeout 30m] [--output json]",
               "Starts an Explore session: a Jupyter server over the desensitized samples of\n"
               "the datasets you rent now (all of them unless --datasets), and prints its id\n"
               "and a one-time login URL (valid 2 minutes; `cce explore open ID` makes a new\n"
               "one). The session is stopped when idle longer than its idle timeout.",
               {{"datasets", "A,B", "the rented datasets to include (default: all rented now)"},
                {"idle-timeout", "DURATION", "e.g. 30m, 2h (default: the plane's, max 8h)"},
                kOutputFlag});
  return WithPlane(p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    api::StartExploreRequest req;
    if (auto d = f.Get("datasets")) {
      req.datasets = SplitComma(*d);
      if (req.datasets->empty()) return InvalidArgument("--datasets: no dataset named");
    }
    if (auto t = f.Get("idle-timeout")) {
      ASSIGN_OR_RETURN(int64_t seconds, ParseDuration("idle-timeout", *t));
      req.idle_timeout_seconds = seconds;
    }
    ASSIGN_OR_RETURN(json r, c.Post("/api/v1/explore/sessions", api::ToJson(req)));
    ASSIGN_OR_RETURN(api::ExploreSession x,
                     DecodeResponse<api::ExploreSession>(r, "POST /api/v1/explore/sessions"));
    ASSIGN_OR_RETURN(api::ExploreLogin login, NewLogin(c, x.id));
    if (f.Get("output") != "json") {
      std::cout << "started Explore session " << x.id << " (" << x.state << ")\n"
                << "open (one-time link, valid until " << FormatTime(login.expires_at) << "):\n  "
                << login.url << "\n";
    }
    json out = r;
    out["login_url"] = login.url;
    return out;
  });
}

int List(const Args& args) {
  FlagParser p("cce explore list [--output json]",
               "Lists your Explore sessions, newest first (operators: everyone's).", {kOutputFlag});
  return WithPlane(p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    ASSIGN_OR_RETURN(json r, c.Get("/api/v1/explore/sessions"));
    ASSIGN_OR_RETURN(api::ExploreSessionList list,
                     DecodeResponse<api::ExploreSessionList>(r, "GET /api/v1/explore/sessions"));
    if (f.Get("output") != "json") {
      Table t({"ID", "STATE", "DATASETS", "IDLE-TIMEOUT", "CREATED", "STOP-REASON"});
      for (const auto& x : list.sessions) AddSession(t, x);
      std::cout << t.Render();
    }
    return ListItems(r, "sessions");
  });
}

int Open(const Args& args) {
  FlagParser p("cce explore open ID [--browser] [--output json]",
               "Prints a fresh one-time login URL for a running session (valid 2 minutes).",
               {{"browser", "", "also open it with xdg-open"}, kOutputFlag});
  return WithPlane(p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    const std::string& id = f.positional()[0];
    if (auto bad = CheckId(id); !bad.empty()) return InvalidArgument(bad);
    ASSIGN_OR_RETURN(api::ExploreLogin login, NewLogin(c, id));
    if (f.Get("output") != "json") std::cout << login.url << "\n";
    if (f.Has("browser")) RETURN_IF_ERROR(OpenInBrowser(login.url));
    return api::ToJson(login);
  });
}

int Stop(const Args& args) {
  FlagParser p("cce explore stop ID [--output json]",
               "Stops an Explore session (its home directory is kept for your next one).",
               {kOutputFlag});
  return WithPlane(p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    const std::string& id = f.positional()[0];
    if (auto bad = CheckId(id); !bad.empty()) return InvalidArgument(bad);
    const std::string path = "/api/v1/explore/sessions/" + id;
    ASSIGN_OR_RETURN(json r, c.Delete(path));
    ASSIGN_OR_RETURN(api::ExploreSession x,
                     DecodeResponse<api::ExploreSession>(r, "DELETE " + path));
    if (f.Get("output") != "json") {
      std::cout << x.id << " " << x.state
                << (x.stop_reason.empty() ? "" : " (" + x.stop_reason + ")") << "\n";
    }
    return r;
  });
}

}  // namespace

std::vector<Command> ExploreCommands() {
  return {
      {{"explore", "start"}, "start a Jupyter session over your rented datasets' samples", Start},
      {{"explore", "list"}, "list your Explore sessions", List},
      {{"explore", "open"}, "print a fresh login URL for a session", Open},
      {{"explore", "stop"}, "stop an Explore session", Stop},
  };
}

}  // namespace cce::cli

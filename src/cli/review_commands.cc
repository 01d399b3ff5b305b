// `cce review list|show|file|approve|reject`: reviewers' side of the Output
// Gate (docs/review.md, docs/cli.md, docs/api.yaml /api/v1/reviews).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "api/wire.h"
#include "base/fd.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/table.h"
#include "crypto/crypto.h"

namespace cce::cli {
namespace {

using nlohmann::json;

// A bundle path in a URL: unreserved bytes and '/' as they are, every other
// byte %XX (the plane decodes it back).
std::string EncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Text from an output is hostile: on a terminal, control bytes (escape
// sequences) are shown as '?', keeping tabs and line breaks.
std::string Printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) c = '?';
  }
  return out;
}

std::string Score(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2) << v;
  return o.str();
}

Status NeedJobId(const std::string& id) {
  if (id.rfind("job-", 0) != 0 || id.size() > 64 ||
      id.find_first_of("/?#% ") != std::string::npos) {
    return InvalidArgument("JOB: expected a job id (job-...), got '" + Printable(id.substr(0, 40)) +
                           "'");
  }
  return Status::Ok();
}

void PrintSummaries(const api::ReviewList& list) {
  Table t({"JOB", "STATE", "CONSUMER", "SCORE", "FINDINGS", "SUBMITTED", "APPROVALS"});
  for (const api::ReviewSummary& r : list.reviews) {
    std::string approvals;
    for (const auto& a : r.approvals) approvals += (approvals.empty() ? "" : ",") + a;
    t.AddRow({r.job, r.state, r.consumer, Score(r.score), std::to_string(r.findings),
              FormatTime(r.submitted_at), approvals});
  }
  std::cout << t.Render();
}

// A table's lines indented by two spaces (under a "findings:" heading).
std::string Indented(const Table& t) {
  std::string out;
  const std::string text = t.Render();
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    out += "  " + text.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

int ReviewList(const Args& args) {
  FlagParser p("cce review list [--all] [--output json]",
               "Lists the outputs the gate held that wait for a decision, oldest first:\n"
               "JOB STATE CONSUMER SCORE FINDINGS SUBMITTED APPROVALS. --all also lists\n"
               "the 100 most recently decided (RELEASED or REJECTED). Reviewers and operators.",
               {{"all", "", "also the recently decided ones"}, kOutputFlag});
  return WithPlane(p, args, 0,
                   [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
                     const std::string path = "/api/v1/reviews?state=HELD";
                     ASSIGN_OR_RETURN(json held, c.Get(path));
                     ASSIGN_OR_RETURN(api::ReviewList list,
                                      DecodeResponse<api::ReviewList>(held, "GET " + path));
                     if (f.Has("all")) {
                       const std::string done_path = "/api/v1/reviews?state=decided&limit=100";
                       ASSIGN_OR_RETURN(json done, c.Get(done_path));
                       ASSIGN_OR_RETURN(api::ReviewList decided,
                                        DecodeResponse<api::ReviewList>(done, "GET " + done_path));
                       for (auto& r : decided.reviews) list.reviews.push_back(std::move(r));
                       for (auto& r : done["reviews"]) held["reviews"].push_back(std::move(r));
                     }
                     if (!json_out) PrintSummaries(list);
                     return ListItems(held, "reviews");
                   });
}

void PrintDetail(const api::ReviewDetail& d) {
  std::cout << "job:      " << d.job << " (consumer " << d.consumer << ")\n"
            << "state:    " << d.state << "\n"
            << "gate:     " << d.verdict << ", score " << Score(d.score) << ", "
            << d.findings.size() << " finding(s)\n"
            << "policy:   " << d.required_approvals << " approval(s) by distinct reviewers\n";
  // Table cells show control bytes as '?', as Printable does.
  Table findings({"DETECTOR", "FILE", "LOCATION", "SCORE", "MESSAGE"});
  for (const api::ReviewFinding& x : d.findings) {
    findings.AddRow({x.detector, x.file, x.location, Score(x.score) + (x.hard ? " (hard)" : ""),
                     x.message});
  }
  std::cout << "findings:\n" << Indented(findings);
  Table files({"PATH", "SIZE"});
  for (const api::ReviewFile& x : d.files) {
    files.AddRow({x.path, std::to_string(x.size) + " bytes"});
  }
  std::cout << "files:\n" << Indented(files);
  std::cout << "decisions:\n";
  if (d.decisions.empty()) std::cout << "  (none)\n";
  for (const api::ReviewDecisionEntry& x : d.decisions) {
    std::cout << "  " << FormatTime(x.at) << "  " << x.reviewer << " " << x.decision << ": "
              << Printable(x.reason) << "\n";
  }
}

int ReviewShow(const Args& args) {
  FlagParser p("cce review show JOB [--output json]",
               "Shows a held output: the gate's verdict and score, every finding (detector,\n"
               "file, location, score, message), the bundle's files with their sizes, the\n"
               "decisions so far and the approvals required. Reviewers only; audited.",
               {kOutputFlag});
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        const std::string& id = f.positional()[0];
        RETURN_IF_ERROR(NeedJobId(id));
        const std::string path = "/api/v1/reviews/" + id;
        ASSIGN_OR_RETURN(json r, c.Get(path));
        ASSIGN_OR_RETURN(api::ReviewDetail d, DecodeResponse<api::ReviewDetail>(r, "GET " + path));
        if (!json_out) PrintDetail(d);
        return r;
      });
}

int ReviewFile(const Args& args) {
  FlagParser p("cce review file JOB PATH [-o FILE]",
               "Fetches one file of a held output (PATH as `cce review show` lists it).\n"
               "Without -o the bytes go to stdout; on a terminal, control bytes are shown\n"
               "as '?'. With -o they go to FILE (created with mode 0600; an existing FILE\n"
               "is refused). Reviewers only; every fetch is audited.",
               {{"out", "FILE", "write the file here instead of stdout", false, 'o'}});
  int exit = 0;
  auto f = ParseOrExit(p, args, 2, &exit);
  if (!f) return exit;
  const std::string& id = f->positional()[0];
  const std::string& file = f->positional()[1];
  if (Status s = NeedJobId(id); !s.ok()) return Fail(s);
  auto config = LoadClientConfig();
  if (!config.ok()) return Fail(config.status());
  auto client = PlaneClient::Connect(*config);
  if (!client.ok()) return Fail(client.status());
  const auto out_path = f->Get("out");
  UniqueFd fd;
  std::string tmp;
  if (out_path) {
    tmp = *out_path + ".partial";
    if (::access(out_path->c_str(), F_OK) == 0) {
      return Fail(InvalidArgument(*out_path + ": already exists (refusing to overwrite)"));
    }
    fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return Fail(ErrnoStatus(tmp, errno));
  }
  const bool tty = !out_path && ::isatty(STDOUT_FILENO) == 1;
  std::vector<std::pair<std::string, std::string>> headers;
  Status s = client->Download(
      "/api/v1/reviews/" + id + "/files/" + EncodePath(file),
      [&](std::span<const uint8_t> piece) -> Status {
        if (out_path) return WriteFull(fd.get(), piece);
        if (tty) {
          const std::string shown = Printable(
              std::string_view(reinterpret_cast<const char*>(piece.data()), piece.size()));
          return WriteFull(STDOUT_FILENO, crypto::AsBytes(shown));
        }
        return WriteFull(STDOUT_FILENO, piece);
      },
      &headers);
  if (out_path) {
    if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(tmp, errno);
    fd.reset();
    if (s.ok() && ::rename(tmp.c_str(), out_path->c_str()) != 0) {
      s = ErrnoStatus(*out_path, errno);
    }
    if (!s.ok()) ::unlink(tmp.c_str());
  }
  if (!s.ok()) return Fail(s);
  return kExitOk;
}

int Decide(const Args& args, bool approve) {
  const std::string verb = approve ? "approve" : "reject";
  FlagParser p("cce review " + verb + " JOB --reason TEXT [--output json]",
               approve ? "Approves a held output. With review.required_approvals: 2 a second,\n"
                         "distinct reviewer must approve too; the last approval releases the\n"
                         "output to its consumer. The reason (1..2000 printable bytes) is shown\n"
                         "to the consumer. Reviewers only; audited."
                       : "Rejects a held output: one rejection rejects, whatever the approvals.\n"
                         "The reason (1..2000 printable bytes) is shown to the consumer.\n"
                         "Reviewers only; audited.",
               {{"reason", "TEXT", "why (required; the consumer sees it)"}, kOutputFlag});
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        const std::string& id = f.positional()[0];
        RETURN_IF_ERROR(NeedJobId(id));
        auto reason = f.Get("reason");
        if (!reason || reason->empty()) return InvalidArgument("--reason TEXT is required");
        const std::string path = "/api/v1/reviews/" + id + "/" + verb;
        ASSIGN_OR_RETURN(json r, c.Post(path, api::ToJson(api::ReviewDecisionRequest{*reason})));
        ASSIGN_OR_RETURN(api::ReviewDetail d, DecodeResponse<api::ReviewDetail>(r, "POST " + path));
        if (!json_out) {
          size_t approvals = 0;
          for (const auto& x : d.decisions) approvals += x.decision == "approve";
          std::cout << d.job << " " << d.state;
          if (d.state == "HELD") {
            std::cout << " (" << approvals << " of " << d.required_approvals << " approvals)";
          }
          std::cout << "\n";
        }
        return r;
      });
}

}  // namespace

std::vector<Command> ReviewCommands() {
  return {
      {{"review", "list"}, "list held outputs waiting for review", ReviewList},
      {{"review", "show"}, "show a held output's findings and files", ReviewShow},
      {{"review", "file"}, "fetch one file of a held output", ReviewFile},
      {{"review", "approve"},
       "approve a held output",
       [](const Args& a) { return Decide(a, true); }},
      {{"review", "reject"},
       "reject a held output",
       [](const Args& a) { return Decide(a, false); }},
  };
}

}  // namespace cce::cli

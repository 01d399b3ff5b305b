// `cce audit verify|list`: the plane's hash-chained audit log.
#include <iostream>

#include "api/wire.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"

namespace cce::cli {
namespace {

using nlohmann::json;

void PrintReport(const std::string& what, const api::ChainReport& r) {
  if (r.ok) {
    std::cout << what << ": OK, " << r.entries_checked << " entries, " << r.checkpoints_checked
              << " signed checkpoints, head " << r.head_seq << " " << r.head_hash << "\n";
  } else {
    std::cout << what << ": FAILED (" << r.failure << ") first bad seq " << r.first_bad_seq << ": "
              << r.reason << "\n";
  }
}

int AuditVerify(const Args& args) {
  FlagParser p("cce audit verify [--output json]",
               "Asks the plane to recompute its audit log's hash chain from entry 1, check\n"
               "every signed checkpoint and the signed rental chain (operator). Names the\n"
               "first bad entry. Exit 0 when both verify, 3 when either does not.",
               {kOutputFlag});
  bool tampered = false;
  int rc = WithPlane(
      p, args, 0, [&](const ParsedFlags&, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(json r, c.Get("/api/v1/audit/verify"));
        ASSIGN_OR_RETURN(api::AuditVerifyReport report,
                         DecodeResponse<api::AuditVerifyReport>(r, "GET /api/v1/audit/verify"));
        tampered = !report.ok;
        if (!json_out) {
          PrintReport("audit log", report.audit);
          PrintReport("rental chain", report.rentals);
        }
        return r;
      });
  return rc == kExitOk && tampered ? kExitDataLoss : rc;
}

int AuditList(const Args& args) {
  FlagParser p("cce audit list [--job ID] [--after SEQ] [--limit N] [--output json]",
               "Lists audit entries in order (operator, reviewer): every decision the plane\n"
               "made, with actor, object and details.",
               {{"job", "ID", "only the entries about this job"},
                {"after", "SEQ", "only entries after sequence number SEQ"},
                {"limit", "N", "at most N entries (default 1000, at most 10000)"},
                kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        std::string query;
        auto add = [&](const std::string& k, const std::string& v) {
          query += (query.empty() ? "?" : "&") + k + "=" + v;
        };
        if (auto j = f.Get("job")) add("job", *j);
        ASSIGN_OR_RETURN(auto after, f.GetUint("after", 0, INT64_MAX));
        ASSIGN_OR_RETURN(auto limit, f.GetUint("limit", 1, 10000));
        if (after) add("after", std::to_string(*after));
        if (limit) add("limit", std::to_string(*limit));
        const std::string path = "/api/v1/audit" + query;
        ASSIGN_OR_RETURN(json r, c.Get(path));
        ASSIGN_OR_RETURN(api::AuditList list, DecodeResponse<api::AuditList>(r, "GET " + path));
        if (!json_out) {
          for (const api::AuditEntry& e : list.entries) {
            std::cout << e.seq << "\t" << FormatTime(e.at) << "\t" << e.decision << "\t" << e.actor
                      << "\t" << e.action << "\t" << e.object << "\t" << e.details.dump() << "\n";
          }
        }
        return r;
      });
}

}  // namespace

std::vector<Command> AuditCommands() {
  return {
      {{"audit", "verify"}, "verify the plane's audit log and rental chain", AuditVerify},
      {{"audit", "list"}, "list audit entries", AuditList},
  };
}

}  // namespace cce::cli

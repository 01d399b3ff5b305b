// `cce audit verify|list`: the plane's hash-chained audit log.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "api/wire.h"
#include "base/exit_code.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/table.h"
#include "crypto/crypto.h"
#include "store/store.h"

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

// ---- Client-side verification --------------------------------------------------
// The plane's answers are only data here: every hash is recomputed and every
// signature checked against the key pinned in the client config.

StatusOr<crypto::Bytes> HexField(const std::string& where, const std::string& hex, size_t size) {
  auto b = crypto::FromHex(hex);
  if (!b.ok() || (size != 0 && b->size() != size)) {
    return Internal("the plane's response: " + where + ": expected " +
                    (size != 0 ? std::to_string(size * 2) + " " : std::string()) +
                    "lower-case hex digits");
  }
  return std::move(b).value();
}

StatusOr<store::Sha256Digest> DigestField(const std::string& where, const std::string& hex) {
  ASSIGN_OR_RETURN(crypto::Bytes b, HexField(where, hex, 32));
  store::Sha256Digest d{};
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

StatusOr<std::vector<store::AuditCheckpoint>> CheckpointsFromWire(
    const std::string& what, const std::vector<api::SignedCheckpoint>& in) {
  std::vector<store::AuditCheckpoint> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string where = what + "[" + std::to_string(i) + "]";
    store::AuditCheckpoint cp;
    cp.seq = in[i].seq;
    cp.at = in[i].at;
    ASSIGN_OR_RETURN(cp.hash, DigestField(where + ".hash", in[i].hash));
    ASSIGN_OR_RETURN(cp.signature, HexField(where + ".signature", in[i].signature, 0));
    out.push_back(std::move(cp));
  }
  return out;
}

// Every entry, page by page; prev_hash is the previous entry's hash as sent
// (the verifier compares it with the hash it recomputed).
StatusOr<std::vector<store::AuditEntry>> FetchAudit(PlaneClient& c) {
  std::vector<store::AuditEntry> out;
  int64_t after = 0;
  for (;;) {
    const std::string path = "/api/v1/audit?limit=10000&after=" + std::to_string(after);
    ASSIGN_OR_RETURN(json r, c.Get(path));
    ASSIGN_OR_RETURN(api::AuditList list, DecodeResponse<api::AuditList>(r, "GET " + path));
    for (const api::AuditEntry& w : list.entries) {
      const std::string where = "audit entry " + std::to_string(w.seq);
      store::AuditEntry e;
      e.seq = w.seq;
      e.record.at = w.at;
      e.record.actor = w.actor;
      e.record.action = w.action;
      e.record.object = w.object;
      auto decision = store::ParseAuditDecision(w.decision);
      if (!decision.ok()) {
        return Internal("the plane's response: " + where +
                        ".decision: expected allow, deny or "
                        "info");
      }
      e.record.decision = *decision;
      e.record.details_json = w.details_text;
      e.prev_hash = out.empty() ? store::Sha256Digest{} : out.back().hash;
      ASSIGN_OR_RETURN(e.hash, DigestField(where + ".hash", w.hash));
      out.push_back(std::move(e));
    }
    if (!list.next_after || list.entries.empty() || *list.next_after <= after) break;
    after = *list.next_after;
  }
  return out;
}

StatusOr<std::vector<store::Rental>> FetchRentals(PlaneClient& c) {
  std::vector<store::Rental> out;
  int64_t after = 0;
  for (;;) {
    const std::string path = "/api/v1/audit/rentals?limit=10000&after=" + std::to_string(after);
    ASSIGN_OR_RETURN(json r, c.Get(path));
    ASSIGN_OR_RETURN(api::ChainRentalList list,
                     DecodeResponse<api::ChainRentalList>(r, "GET " + path));
    for (const api::ChainRental& w : list.rentals) {
      const std::string where = "rental " + std::to_string(w.seq);
      store::Rental x;
      x.seq = w.seq;
      x.dataset_id = w.dataset_id;
      x.consumer_id = w.consumer_id;
      x.start = w.start;
      x.end = w.end;
      x.created_at = w.created_at;
      ASSIGN_OR_RETURN(x.prev_hash, DigestField(where + ".prev_hash", w.prev_hash));
      ASSIGN_OR_RETURN(x.hash, DigestField(where + ".hash", w.hash));
      ASSIGN_OR_RETURN(x.signature, HexField(where + ".signature", w.signature, 0));
      out.push_back(std::move(x));
    }
    if (!list.next_after || list.rentals.empty() || *list.next_after <= after) break;
    after = *list.next_after;
  }
  return out;
}

api::ChainReport ReportToWire(const store::ChainReport& r) {
  return {r.ok(),
          std::string(store::ChainFailureName(r.failure)),
          r.first_bad_seq,
          r.reason,
          r.entries_checked,
          r.checkpoints_checked,
          r.head.seq,
          crypto::ToHex(r.head.hash)};
}

// The remembered head, or seq 0 (nothing remembered) when the config has none.
StatusOr<store::AuditHead> Remembered(const std::string& what, int64_t seq,
                                      const std::string& hash) {
  if (seq == 0) return store::AuditHead{};
  auto d = crypto::FromHex(hash);
  if (!d.ok() || d->size() != 32) {
    return InvalidArgument(ClientConfigPath() + ": planes: " + what +
                           "_hash: expected 64 hex digits");
  }
  store::AuditHead h{seq, {}};
  std::copy(d->begin(), d->end(), h.hash.begin());
  return h;
}

// The head to remember next: the newest signed head, never behind the old one.
void Advance(const store::ChainReport& r, const store::AuditHead& old, int64_t* seq,
             std::string* hash) {
  if (r.signed_head.seq > old.seq) {
    *seq = r.signed_head.seq;
    *hash = crypto::ToHex(r.signed_head.hash);
  }
}

int AuditVerify(const Args& args) {
  FlagParser p("cce audit verify [--output json]",
               "Verifies the plane's audit log and signed rental chain on this machine\n"
               "(operator): fetches every entry, rental and signed checkpoint, recomputes\n"
               "each hash and checks each signature against the plane key pinned in the\n"
               "client config on first use. Fails when the log does not start with the\n"
               "signed genesis, or ends before (or disagrees with) the signed head this\n"
               "client verified last time. Names the first bad entry. Exit 0 when both\n"
               "verify, 3 when either does not or the plane key changed.",
               {kOutputFlag});
  bool tampered = false;
  int rc = WithPlane(
      p, args, 0, [&](const ParsedFlags&, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(ClientConfig config, LoadClientConfig());
        PlaneTrust trust;
        if (auto it = config.planes.find(config.plane_url); it != config.planes.end()) {
          trust = it->second;
        }
        ASSIGN_OR_RETURN(json cj, c.Get("/api/v1/audit/checkpoints"));
        ASSIGN_OR_RETURN(api::AuditCheckpoints cps, DecodeResponse<api::AuditCheckpoints>(
                                                        cj, "GET /api/v1/audit/checkpoints"));
        ASSIGN_OR_RETURN(crypto::Bytes key, HexField("public_key", cps.public_key,
                                                     crypto::Ed25519PrivateKey::kPublicKeySize));
        const std::string key_hex = crypto::ToHex(key);
        const bool first_use = trust.public_key.empty();
        if (!first_use && trust.public_key != key_hex) {
          return DataLoss("the plane at " + config.plane_url + " now signs with key " + key_hex +
                          ", but key " + trust.public_key +
                          " was pinned for it: another plane, or its key was replaced. If it "
                          "was re-keyed on purpose, remove planes." +
                          config.plane_url + " from " + ClientConfigPath());
        }
        ASSIGN_OR_RETURN(auto audit_cps, CheckpointsFromWire("audit", cps.audit));
        ASSIGN_OR_RETURN(auto rental_cps, CheckpointsFromWire("rentals", cps.rentals));
        ASSIGN_OR_RETURN(auto entries, FetchAudit(c));
        ASSIGN_OR_RETURN(auto rentals, FetchRentals(c));
        ASSIGN_OR_RETURN(store::AuditHead old_audit,
                         Remembered("audit", trust.audit_seq, trust.audit_hash));
        ASSIGN_OR_RETURN(store::AuditHead old_rentals,
                         Remembered("rentals", trust.rentals_seq, trust.rentals_hash));

        store::ChainReport audit =
            store::VerifyAuditEntries(entries, audit_cps, key, /*require_genesis=*/true);
        store::CheckAgainstRemembered(
            old_audit, [&](int64_t seq) { return entries[static_cast<size_t>(seq - 1)].hash; },
            &audit);
        store::ChainReport rental = store::VerifyRentalEntries(rentals, rental_cps, key);
        store::CheckAgainstRemembered(
            old_rentals, [&](int64_t seq) { return rentals[static_cast<size_t>(seq - 1)].hash; },
            &rental);
        api::AuditVerifyReport report{audit.ok() && rental.ok(), ReportToWire(audit),
                                      ReportToWire(rental)};
        tampered = !report.ok;
        if (report.ok) {
          PlaneTrust next = trust;
          next.public_key = key_hex;
          Advance(audit, old_audit, &next.audit_seq, &next.audit_hash);
          Advance(rental, old_rentals, &next.rentals_seq, &next.rentals_hash);
          if (first_use) {
            std::cerr << "cce: pinned the plane key " << key_hex << " for " << config.plane_url
                      << " (first use)\n";
          }
          RETURN_IF_ERROR(SavePlaneTrust(config.plane_url, next));
        }
        if (!json_out) {
          PrintReport("audit log", report.audit);
          PrintReport("rental chain", report.rentals);
        }
        return ToJson(report);
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
          Table t({"SEQ", "TIME", "DECISION", "ACTOR", "ACTION", "OBJECT", "DETAILS"});
          for (const api::AuditEntry& e : list.entries) {
            t.AddRow({std::to_string(e.seq), FormatTime(e.at), e.decision, e.actor, e.action,
                      e.object, e.details.dump()});
          }
          std::cout << t.Render();
        }
        if (list.next_after) {
          NoteNextPage("entries", "cce audit list --after " + std::to_string(*list.next_after) +
                                      (f.Get("job") ? " --job " + *f.Get("job") : "") +
                                      (limit ? " --limit " + std::to_string(*limit) : ""));
        }
        return ListItems(r, "entries");
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

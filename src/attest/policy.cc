#include "attest/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <functional>
#include <map>
#include <set>

#include "attest/time_util.h"
#include "base/fd.h"

namespace cce::attest {
namespace {

using crypto::ToHex;

constexpr size_t kMaxPolicyBytes = size_t{1} << 20;
constexpr size_t kMaxListSize = 4096;

std::string Where(std::string_view source, const YAML::Node& node, std::string_view field) {
  const YAML::Mark m = node.Mark();
  std::string out(source);
  if (!m.is_null() && m.line >= 0) {
    out += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  return out + ": " + std::string(field);
}

class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status Bad(const YAML::Node& n, std::string_view field, std::string_view expected) const {
    return InvalidArgument(Where(source_, n, field) + ": expected " + std::string(expected));
  }

  StatusOr<bool> Bool(const YAML::Node& n, std::string_view field) const {
    if (n.IsScalar()) {
      if (n.Scalar() == "true") return true;
      if (n.Scalar() == "false") return false;
    }
    return Bad(n, field, "true or false");
  }

  StatusOr<std::vector<YAML::Node>> List(const YAML::Node& n, std::string_view field) const {
    if (!n.IsSequence()) return Bad(n, field, "a list");
    if (n.size() == 0) {
      return InvalidArgument(Where(source_, n, field) +
                             ": an empty list allows nothing; omit the field to allow any value");
    }
    if (n.size() > kMaxListSize) return Bad(n, field, "at most 4096 entries");
    std::vector<YAML::Node> out;
    for (const auto& item : n) out.push_back(item);
    return out;
  }

  StatusOr<std::vector<Measurement>> Measurements(const YAML::Node& n,
                                                  std::string_view field) const {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(n, field));
    std::vector<Measurement> out;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string item_field = std::string(field) + "[" + std::to_string(i) + "]";
      if (!items[i].IsScalar()) return Bad(items[i], item_field, "96 hex digits");
      auto bytes = crypto::FromHex(items[i].Scalar());
      if (!bytes.ok() || bytes->size() != 48) return Bad(items[i], item_field, "96 hex digits");
      Measurement m{};
      std::copy(bytes->begin(), bytes->end(), m.begin());
      out.push_back(m);
    }
    return out;
  }

  StatusOr<std::vector<TcbStatus>> Statuses(const YAML::Node& n, std::string_view field) const {
    ASSIGN_OR_RETURN(std::vector<YAML::Node> items, List(n, field));
    std::vector<TcbStatus> out;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string item_field = std::string(field) + "[" + std::to_string(i) + "]";
      std::optional<TcbStatus> s;
      if (items[i].IsScalar()) s = TcbStatusFromName(items[i].Scalar());
      if (!s.has_value()) {
        std::string names;
        for (TcbStatus t : AllTcbStatuses()) {
          names += (names.empty() ? "" : ", ") + std::string(TcbStatusName(t));
        }
        return Bad(items[i], item_field, "one of " + names);
      }
      if (std::find(out.begin(), out.end(), *s) == out.end()) out.push_back(*s);
    }
    return out;
  }

  // "0x" followed by 1..16 hex digits.
  StatusOr<uint64_t> Hex64(const YAML::Node& n, std::string_view field) const {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    uint64_t v = 0;
    if (s.size() < 3 || s.size() > 18 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
      return Bad(n, field, "a hex bit mask such as \"0x10000000\"");
    }
    const auto [ptr, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
    if (ec != std::errc() || ptr != s.data() + s.size()) {
      return Bad(n, field, "a hex bit mask such as \"0x10000000\"");
    }
    return v;
  }

  // Seconds, or a number with s / m / h / d.
  StatusOr<int64_t> Duration(const YAML::Node& n, std::string_view field) const {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    int64_t unit = 1;
    std::string_view digits = s;
    if (!s.empty()) {
      switch (s.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: unit = 0; break;
      }
      if (unit != 0) digits.remove_suffix(1);
      if (unit == 0) unit = 1;
    }
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    constexpr int64_t kMax = int64_t{100} * 365 * 86400;
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || v <= 0 ||
        v > kMax / unit) {
      return Bad(n, field, "a positive duration such as 86400, 12h or 30d (at most 100 years)");
    }
    return v * unit;
  }

 private:
  std::string_view source_;
};

// "0x" and 16 hex digits.
std::string Hex64Text(uint64_t v) {
  std::array<uint8_t, 8> be{};
  for (size_t i = 0; i < 8; ++i) be[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  return "0x" + ToHex(be);
}

std::string Hex48(const Measurement& m) {
  return ToHex(m);
}

void CheckAllowed(const std::optional<std::vector<Measurement>>& allowed, const Measurement& value,
                  std::string_view name, std::vector<std::string>& reasons) {
  if (!allowed.has_value()) return;
  if (std::find(allowed->begin(), allowed->end(), value) != allowed->end()) return;
  reasons.push_back(std::string(name) + " " + Hex48(value) +
                    " is not in the policy's allowed list (" + std::to_string(allowed->size()) +
                    " value" + (allowed->size() == 1 ? "" : "s") + ")");
}

}  // namespace

StatusOr<Policy> Policy::Parse(std::string_view yaml, std::string_view source) {
  if (yaml.size() > kMaxPolicyBytes) {
    return InvalidArgument(std::string(source) + ": larger than 1 MiB");
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
  Policy p;
  if (root.IsNull()) return p;  // an empty file is the default policy
  Reader r(source);
  if (!root.IsMap()) return r.Bad(root, "policy", "a mapping of policy fields");

  using Handler = std::function<Status(const YAML::Node&, const std::string&)>;
  const std::map<std::string, Handler, std::less<>> handlers = {
      {"accepted_tcb_statuses",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.accepted_tcb_statuses, r.Statuses(v, k));
         return Status::Ok();
       }},
      {"required_td_attributes",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.required_td_attributes, r.Hex64(v, k));
         return Status::Ok();
       }},
      {"mrtd",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.mrtd, r.Measurements(v, k));
         return Status::Ok();
       }},
      {"rtmr0",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.rtmr[0], r.Measurements(v, k));
         return Status::Ok();
       }},
      {"rtmr1",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.rtmr[1], r.Measurements(v, k));
         return Status::Ok();
       }},
      {"rtmr2",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.rtmr[2], r.Measurements(v, k));
         return Status::Ok();
       }},
      {"rtmr3",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.rtmr[3], r.Measurements(v, k));
         return Status::Ok();
       }},
      {"mrconfigid",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.mrconfigid, r.Measurements(v, k));
         return Status::Ok();
       }},
      {"max_collateral_age",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.max_collateral_age_seconds, r.Duration(v, k));
         return Status::Ok();
       }},
      {"allow_missing_pck_crl",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.allow_missing_pck_crl, r.Bool(v, k));
         return Status::Ok();
       }},
      {"allow_simulated",
       [&](const YAML::Node& v, const std::string& k) -> Status {
         ASSIGN_OR_RETURN(p.allow_simulated, r.Bool(v, k));
         return Status::Ok();
       }},
  };
  std::set<std::string> seen;
  try {
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) return r.Bad(kv.first, "policy", "string keys");
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        return InvalidArgument(Where(source, kv.first, key) + ": duplicate field");
      }
      const auto it = handlers.find(key);
      if (it == handlers.end()) {
        return InvalidArgument(Where(source, kv.first, key) + ": unknown policy field");
      }
      RETURN_IF_ERROR(it->second(kv.second, key));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string(source) + ": " + e.msg);
  }
  return p;
}

StatusOr<Policy> Policy::Load(const std::string& path) {
  auto text = ReadFile(path, kMaxPolicyBytes);
  if (!text.ok()) return text.status().WithContext(path);
  return Parse(*text, path);
}

StatusOr<PolicyDecision> EvaluatePolicy(const DcapVerification& v, const Policy& policy,
                                        int64_t now,
                                        std::optional<crypto::ByteSpan> expected_report_data) {
  if (expected_report_data.has_value() && expected_report_data->size() != 64) {
    return InvalidArgument("expected report data must be 64 bytes, got " +
                           std::to_string(expected_report_data->size()));
  }
  PolicyDecision d;
  std::vector<std::string>& reasons = d.reasons;
  const TdReportBody& body = v.quote.body;

  if (v.simulated && !policy.allow_simulated) {
    reasons.emplace_back(
        "simulated TEE: the quote chains to a development root, and the policy does not allow "
        "simulation");
  }
  const uint64_t attributes = body.TdAttributes();
  if ((attributes & kTdAttributeDebug) != 0) {
    reasons.push_back("the TD is in DEBUG mode (TDATTRIBUTES " + ToHex(body.td_attributes) +
                      ", bit 0 set); debug TDs are never accepted");
  }
  if ((attributes & policy.required_td_attributes) != policy.required_td_attributes) {
    reasons.push_back("TDATTRIBUTES " + Hex64Text(attributes) + " lack required bits " +
                      Hex64Text(policy.required_td_attributes));
  }
  const auto& accepted = policy.accepted_tcb_statuses;
  if (std::find(accepted.begin(), accepted.end(), v.tcb.status) == accepted.end()) {
    std::string list;
    for (TcbStatus s : accepted) list += (list.empty() ? "" : ", ") + std::string(TcbStatusName(s));
    std::string reason = "TCB status " + std::string(TcbStatusName(v.tcb.status)) +
                         " is not accepted (accepted: " + list + ")";
    if (!v.tcb.advisory_ids.empty()) {
      reason += "; advisories:";
      for (const std::string& id : v.tcb.advisory_ids) reason += " " + id;
    }
    reasons.push_back(std::move(reason));
  }
  if (v.pck_crl == PckCrlStatus::kMissing && !policy.allow_missing_pck_crl) {
    reasons.emplace_back(
        "PCK CRL missing: the PCK certificate's revocation was not checked, and the policy "
        "requires it (allow_missing_pck_crl: false)");
  }
  CheckAllowed(policy.mrtd, body.mr_td, "MRTD", reasons);
  static constexpr const char* kRtmr[4] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
  for (size_t i = 0; i < 4; ++i) CheckAllowed(policy.rtmr[i], body.rtmr[i], kRtmr[i], reasons);
  CheckAllowed(policy.mrconfigid, body.mr_config_id, "MRCONFIGID", reasons);
  if (policy.max_collateral_age_seconds.has_value()) {
    const int64_t age = now - v.collateral_oldest_issue_unix;
    if (age > *policy.max_collateral_age_seconds) {
      reasons.push_back("collateral is " + std::to_string(age) + " s old (issued " +
                        FormatRfc3339Utc(v.collateral_oldest_issue_unix) +
                        "); the policy allows at most " +
                        std::to_string(*policy.max_collateral_age_seconds) + " s");
    }
  }
  if (expected_report_data.has_value() &&
      !crypto::ConstantTimeEquals(*expected_report_data, body.report_data)) {
    reasons.push_back("REPORTDATA " + ToHex(body.report_data) +
                      " does not equal the expected value " + ToHex(*expected_report_data));
  }
  d.accepted = reasons.empty();
  return d;
}

}  // namespace cce::attest

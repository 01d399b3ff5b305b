#include "explore/sample_policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "base/fd.h"

namespace cce::explore {
namespace {

constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr size_t kMaxColumns = 10000;
constexpr size_t kMinSecretBytes = 32;
constexpr size_t kMaxSecretBytes = 4096;

// Builds "SOURCE:LINE:COL: path: message" errors from yaml-cpp marks.
class Errors {
 public:
  explicit Errors(const std::string& source) : source_(source) {}
  Status At(const YAML::Node& node, const std::string& path, const std::string& msg) const {
    const YAML::Mark m = node.Mark();
    std::string where = source_;
    if (m.line >= 0) where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    return InvalidArgument(where + ": " + path + ": " + msg);
  }

 private:
  const std::string& source_;
};

// Iterates a mapping's keys, refusing duplicates and keys not in `allowed`.
Status CheckKeys(const Errors& e, const YAML::Node& map, const std::string& path,
                 const std::set<std::string>& allowed) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return e.At(kv.first, path, "expected a string key");
    const std::string& key = kv.first.Scalar();
    const std::string where = path.empty() ? key : path + "." + key;
    if (!allowed.count(key)) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return e.At(kv.first, where, "unknown key '" + key + "' (expected one of: " + list + ")");
    }
    if (!seen.insert(key).second) return e.At(kv.first, where, "duplicate key");
  }
  return Status::Ok();
}

StatusOr<double> Number(const Errors& e, const YAML::Node& n, const std::string& path, double min,
                        double max) {
  if (!n.IsScalar()) return e.At(n, path, "expected a number");
  double v = 0;
  try {
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    return e.At(n, path, "expected a number, got '" + n.Scalar() + "'");
  }
  if (!std::isfinite(v) || v < min || v > max) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%g is out of range [%g, %g]", v, min, max);
    return e.At(n, path, buf);
  }
  return v;
}

StatusOr<int64_t> Integer(const Errors& e, const YAML::Node& n, const std::string& path,
                          int64_t min, int64_t max) {
  ASSIGN_OR_RETURN(double v,
                   Number(e, n, path, static_cast<double>(min), static_cast<double>(max)));
  if (v != std::floor(v)) return e.At(n, path, "expected an integer, got '" + n.Scalar() + "'");
  return static_cast<int64_t>(v);
}

StatusOr<std::string> String(const Errors& e, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar() || n.Scalar().empty()) return e.At(n, path, "expected a non-empty string");
  return n.Scalar();
}

StatusOr<std::vector<std::string>> Strings(const Errors& e, const YAML::Node& n,
                                           const std::string& path) {
  if (!n.IsSequence() || n.size() == 0) return e.At(n, path, "expected a non-empty list of names");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(std::string s, String(e, n[i], p));
    if (!seen.insert(s).second) return e.At(n[i], p, "'" + s + "' is listed twice");
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<ColumnAction> ParseAction(const Errors& e, const YAML::Node& n, const std::string& path) {
  static const std::pair<const char*, ColumnAction> kActions[] = {
      {"drop", ColumnAction::kDrop},
      {"keep", ColumnAction::kKeep},
      {"mask", ColumnAction::kMask},
      {"hash", ColumnAction::kHash},
      {"generalize", ColumnAction::kGeneralize},
      {"date", ColumnAction::kDate},
      {"top_k", ColumnAction::kTopK}};
  if (n.IsScalar()) {
    for (const auto& [name, action] : kActions) {
      if (n.Scalar() == name) return action;
    }
  }
  return e.At(n, path,
              "expected one of drop, keep, mask, hash, generalize, date, top_k, got '" +
                  (n.IsScalar() ? n.Scalar() : std::string("(not a string)")) + "'");
}

Status ParseColumn(const Errors& e, const std::string& name, const YAML::Node& key,
                   const YAML::Node& n, ColumnPolicy& c) {
  const std::string path = "columns." + name;
  c.name = name;
  c.line = key.Mark().line + 1;
  c.column = key.Mark().column + 1;
  if (!n.IsMap()) return e.At(n, path, "expected a mapping like {action: keep}");
  if (!n["action"]) return e.At(n, path, "missing key 'action'");
  ASSIGN_OR_RETURN(c.action, ParseAction(e, n["action"], path + ".action"));
  auto get = [&](const char* k) { return n[k]; };
  switch (c.action) {
    case ColumnAction::kDrop:
    case ColumnAction::kKeep: return CheckKeys(e, n, path, {"action"});
    case ColumnAction::kMask: {
      RETURN_IF_ERROR(CheckKeys(e, n, path, {"action", "keep_last"}));
      if (get("keep_last")) {
        ASSIGN_OR_RETURN(int64_t v, Integer(e, get("keep_last"), path + ".keep_last", 0, 1000));
        c.keep_last = static_cast<int>(v);
      }
      return Status::Ok();
    }
    case ColumnAction::kHash: {
      RETURN_IF_ERROR(CheckKeys(e, n, path, {"action", "length"}));
      if (get("length")) {
        ASSIGN_OR_RETURN(int64_t v, Integer(e, get("length"), path + ".length", 8, 64));
        c.length = static_cast<int>(v);
      }
      return Status::Ok();
    }
    case ColumnAction::kGeneralize: {
      RETURN_IF_ERROR(CheckKeys(e, n, path, {"action", "bands", "width", "prefix"}));
      const int given = (get("bands") ? 1 : 0) + (get("width") ? 1 : 0) + (get("prefix") ? 1 : 0);
      if (given != 1) {
        return e.At(n, path, "generalize needs exactly one of bands, width, prefix");
      }
      if (get("bands")) {
        const YAML::Node b = get("bands");
        if (!b.IsSequence() || b.size() < 2 || b.size() > 10000) {
          return e.At(b, path + ".bands", "expected a list of at least 2 band edges");
        }
        for (size_t i = 0; i < b.size(); ++i) {
          const std::string p = path + ".bands[" + std::to_string(i) + "]";
          ASSIGN_OR_RETURN(double v, Number(e, b[i], p, -1e15, 1e15));
          if (!c.bands.empty() && !(v > c.bands.back())) {
            return e.At(b[i], p, "band edges must be strictly increasing");
          }
          c.bands.push_back(v);
        }
      } else if (get("width")) {
        ASSIGN_OR_RETURN(c.width, Number(e, get("width"), path + ".width", 0, 1e15));
        if (!(c.width > 0)) return e.At(get("width"), path + ".width", "must be greater than 0");
      } else {
        ASSIGN_OR_RETURN(int64_t v, Integer(e, get("prefix"), path + ".prefix", 1, 1000));
        c.prefix = static_cast<int>(v);
      }
      return Status::Ok();
    }
    case ColumnAction::kDate: {
      RETURN_IF_ERROR(CheckKeys(e, n, path, {"action", "truncate", "shift_days_max", "entity"}));
      if (!get("truncate") && !get("shift_days_max")) {
        return e.At(n, path, "date needs truncate (day|month|year) and/or shift_days_max");
      }
      if (get("truncate")) {
        const YAML::Node t = get("truncate");
        const std::string s = t.IsScalar() ? t.Scalar() : "";
        if (s == "day") {
          c.truncate = DateUnit::kDay;
        } else if (s == "month") {
          c.truncate = DateUnit::kMonth;
        } else if (s == "year") {
          c.truncate = DateUnit::kYear;
        } else {
          return e.At(t, path + ".truncate", "expected day, month or year, got '" + s + "'");
        }
      }
      if (get("shift_days_max")) {
        ASSIGN_OR_RETURN(int64_t v,
                         Integer(e, get("shift_days_max"), path + ".shift_days_max", 1, 36500));
        c.shift_days_max = static_cast<int>(v);
      }
      if (get("entity")) {
        if (c.shift_days_max == 0) {
          return e.At(get("entity"), path + ".entity", "entity needs shift_days_max");
        }
        ASSIGN_OR_RETURN(c.entity, String(e, get("entity"), path + ".entity"));
      }
      return Status::Ok();
    }
    case ColumnAction::kTopK: {
      RETURN_IF_ERROR(CheckKeys(e, n, path, {"action", "k", "other"}));
      if (!get("k")) return e.At(n, path, "top_k needs k");
      ASSIGN_OR_RETURN(int64_t v, Integer(e, get("k"), path + ".k", 1, 100000));
      c.top_k = static_cast<int>(v);
      if (get("other")) {
        if (!get("other").IsScalar()) {
          return e.At(get("other"), path + ".other", "expected a string");
        }
        c.other = get("other").Scalar();
      }
      return Status::Ok();
    }
  }
  return e.At(n, path, "unknown action");
}

Status ParseRows(const Errors& e, const YAML::Node& n, SamplePolicy& p) {
  if (!n.IsMap()) return e.At(n, "rows", "expected {rate: R} or {count: N}");
  RETURN_IF_ERROR(CheckKeys(e, n, "rows", {"rate", "count"}));
  if (n["rate"] && n["count"]) return e.At(n, "rows", "give rate or count, not both");
  if (n["rate"]) {
    ASSIGN_OR_RETURN(p.rate, Number(e, n["rate"], "rows.rate", 0, 1));
    if (!(p.rate > 0)) return e.At(n["rate"], "rows.rate", "must be greater than 0");
  } else if (n["count"]) {
    ASSIGN_OR_RETURN(int64_t v, Integer(e, n["count"], "rows.count", 1, int64_t{1} << 40));
    p.count = static_cast<uint64_t>(v);
  } else {
    return e.At(n, "rows", "expected {rate: R} or {count: N}");
  }
  return Status::Ok();
}

Status ParseKAnonymity(const Errors& e, const YAML::Node& n, SamplePolicy& p) {
  const std::string path = "k_anonymity";
  if (!n.IsMap()) return e.At(n, path, "expected a mapping");
  RETURN_IF_ERROR(
      CheckKeys(e, n, path, {"k", "quasi_identifiers", "max_suppression", "l_diversity"}));
  KAnonymity k;
  if (!n["k"]) return e.At(n, path, "missing key 'k'");
  ASSIGN_OR_RETURN(int64_t kv, Integer(e, n["k"], path + ".k", 2, 1000000));
  k.k = static_cast<int>(kv);
  if (!n["quasi_identifiers"]) return e.At(n, path, "missing key 'quasi_identifiers'");
  ASSIGN_OR_RETURN(k.quasi_identifiers,
                   Strings(e, n["quasi_identifiers"], path + ".quasi_identifiers"));
  if (k.quasi_identifiers.size() > 16) {
    return e.At(n["quasi_identifiers"], path + ".quasi_identifiers", "at most 16 columns");
  }
  for (size_t i = 0; i < k.quasi_identifiers.size(); ++i) {
    const std::string& q = k.quasi_identifiers[i];
    const ColumnPolicy* c = p.Find(q);
    const std::string where = path + ".quasi_identifiers[" + std::to_string(i) + "]";
    if (c == nullptr) {
      return e.At(n["quasi_identifiers"][i], where, "'" + q + "' is not declared under columns");
    }
    if (c->action == ColumnAction::kDrop) {
      return e.At(n["quasi_identifiers"][i], where,
                  "'" + q + "' is dropped, so it is not in the sample: remove it from the list");
    }
  }
  if (n["max_suppression"]) {
    ASSIGN_OR_RETURN(k.max_suppression,
                     Number(e, n["max_suppression"], path + ".max_suppression", 0, 1));
  }
  if (n["l_diversity"]) {
    const YAML::Node l = n["l_diversity"];
    const std::string lp = path + ".l_diversity";
    if (!l.IsMap()) return e.At(l, lp, "expected {column: NAME, l: N}");
    RETURN_IF_ERROR(CheckKeys(e, l, lp, {"column", "l"}));
    if (!l["column"] || !l["l"]) return e.At(l, lp, "expected {column: NAME, l: N}");
    LDiversity ld;
    ASSIGN_OR_RETURN(ld.column, String(e, l["column"], lp + ".column"));
    ASSIGN_OR_RETURN(int64_t lv, Integer(e, l["l"], lp + ".l", 2, 1000));
    ld.l = static_cast<int>(lv);
    const ColumnPolicy* c = p.Find(ld.column);
    if (c == nullptr) {
      return e.At(l["column"], lp + ".column", "'" + ld.column + "' is not declared under columns");
    }
    if (c->action == ColumnAction::kDrop || c->action == ColumnAction::kTopK) {
      return e.At(l["column"], lp + ".column",
                  "the sensitive column must be in the sample and not top_k (it is " +
                      std::string(ColumnActionName(c->action)) + ")");
    }
    for (const std::string& q : k.quasi_identifiers) {
      if (q == ld.column) {
        return e.At(l["column"], lp + ".column",
                    "'" + q + "' is a quasi-identifier; the sensitive column must not be");
      }
    }
    k.l_diversity = ld;
  }
  p.k_anonymity = std::move(k);
  return Status::Ok();
}

StatusOr<SamplePolicy> Parse(const YAML::Node& root, const Errors& e, const std::string& source,
                             const std::string& base_dir) {
  SamplePolicy p;
  p.source = source;
  if (!root.IsMap()) return e.At(root, "(document)", "expected a mapping with key 'columns'");
  RETURN_IF_ERROR(
      CheckKeys(e, root, "", {"seed", "rows", "secret_file", "k_anonymity", "columns"}));
  if (root["seed"]) {
    ASSIGN_OR_RETURN(int64_t s, Integer(e, root["seed"], "seed", 0, int64_t{1} << 53));
    p.seed = static_cast<uint64_t>(s);
  }
  if (root["rows"]) RETURN_IF_ERROR(ParseRows(e, root["rows"], p));
  if (root["secret_file"]) {
    ASSIGN_OR_RETURN(p.secret_file, String(e, root["secret_file"], "secret_file"));
    if (!base_dir.empty() && p.secret_file[0] != '/') {
      p.secret_file = (std::filesystem::path(base_dir) / p.secret_file).string();
    }
  }
  const YAML::Node cols = root["columns"];
  if (!cols) return e.At(root, "columns", "missing: every column of the data must be declared");
  if (!cols.IsMap() || cols.size() == 0) {
    return e.At(cols, "columns", "expected a mapping of column name to {action: ...}");
  }
  if (cols.size() > kMaxColumns) return e.At(cols, "columns", "too many columns");
  std::set<std::string> seen;
  for (const auto& kv : cols) {
    if (!kv.first.IsScalar() || kv.first.Scalar().empty()) {
      return e.At(kv.first, "columns", "expected a non-empty column name");
    }
    const std::string& name = kv.first.Scalar();
    if (!seen.insert(name).second) return e.At(kv.first, "columns." + name, "duplicate column");
    ColumnPolicy c;
    RETURN_IF_ERROR(ParseColumn(e, name, kv.first, kv.second, c));
    p.columns.push_back(std::move(c));
  }
  bool needs_secret = false;
  for (const ColumnPolicy& c : p.columns) {
    if (c.action == ColumnAction::kHash || c.shift_days_max > 0) needs_secret = true;
    if (!c.entity.empty() && p.Find(c.entity) == nullptr) {
      return e.At(cols[c.name]["entity"], "columns." + c.name + ".entity",
                  "'" + c.entity + "' is not declared under columns");
    }
  }
  if (needs_secret && p.secret_file.empty()) {
    return e.At(root, "secret_file",
                "required: hash columns and date shifting are keyed by a provider secret");
  }
  if (root["k_anonymity"]) RETURN_IF_ERROR(ParseKAnonymity(e, root["k_anonymity"], p));
  return p;
}

}  // namespace

std::string_view ColumnActionName(ColumnAction action) {
  switch (action) {
    case ColumnAction::kDrop: return "drop";
    case ColumnAction::kKeep: return "keep";
    case ColumnAction::kMask: return "mask";
    case ColumnAction::kHash: return "hash";
    case ColumnAction::kGeneralize: return "generalize";
    case ColumnAction::kDate: return "date";
    case ColumnAction::kTopK: return "top_k";
  }
  return "unknown";
}

std::string_view DateUnitName(DateUnit unit) {
  switch (unit) {
    case DateUnit::kDay: return "day";
    case DateUnit::kMonth: return "month";
    case DateUnit::kYear: return "year";
  }
  return "unknown";
}

const ColumnPolicy* SamplePolicy::Find(std::string_view name) const {
  for (const ColumnPolicy& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

StatusOr<SamplePolicy> ParseSamplePolicy(std::string_view yaml_text, const std::string& source_name,
                                         const std::string& base_dir) {
  if (yaml_text.size() > kMaxPolicyBytes) {
    return InvalidArgument(source_name + ": larger than " + std::to_string(kMaxPolicyBytes) +
                           " bytes");
  }
  Errors e(source_name);
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    if (!root || root.IsNull()) {
      return InvalidArgument(source_name + ":1:1: expected a mapping with key 'columns'");
    }
    return Parse(root, e, source_name, base_dir);
  } catch (const YAML::Exception& ex) {
    return InvalidArgument(source_name + ":" + std::to_string(ex.mark.line + 1) + ":" +
                           std::to_string(ex.mark.column + 1) + ": " + ex.msg);
  }
}

StatusOr<SamplePolicy> LoadSamplePolicy(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxPolicyBytes + 1));
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ParseSamplePolicy(text, path, dir);
}

StatusOr<crypto::SecretBytes> LoadSampleSecret(const SamplePolicy& policy) {
  if (policy.secret_file.empty()) {
    return FailedPrecondition(policy.source + ": secret_file: not set");
  }
  const std::string& path = policy.secret_file;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ELOOP) {
      return PermissionDenied("secret_file " + path + ": is a symlink (refused)");
    }
    return ErrnoStatus("secret_file " + path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("secret_file " + path + ": fstat", errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("secret_file " + path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("secret_file " + path + ": mode " + mode +
                            " lets group or others read it; chmod 600 it");
  }
  crypto::SecretBytes buf(kMaxSecretBytes + 1);
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("secret_file " + path + ": read", errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxSecretBytes) {
    return InvalidArgument("secret_file " + path + ": larger than " +
                           std::to_string(kMaxSecretBytes) + " bytes");
  }
  if (got < kMinSecretBytes) {
    return InvalidArgument("secret_file " + path + ": " + std::to_string(got) +
                           " bytes; at least 32 are needed (openssl rand -hex 32 > FILE)");
  }
  return crypto::SecretBytes::CopyOf({buf.data(), got});
}

}  // namespace cce::explore

#include "attest/collateral.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

#include "attest/time_util.h"
#include "base/fd.h"

namespace cce::attest {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxJsonBytes = size_t{4} << 20;
constexpr size_t kMaxFileBytes = size_t{8} << 20;
constexpr size_t kMaxJsonDepth = 16;

std::string Quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 128)) + "'";
}

// ---- strict JSON --------------------------------------------------------------

struct JsonAbort : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses text as one JSON document; duplicate keys anywhere and nesting deeper
// than kMaxJsonDepth are errors (a duplicate would let the signed bytes and
// the parsed values disagree about which value counts).
StatusOr<Json> ParseStrictJson(std::string_view text, const std::string& what) {
  if (text.size() > kMaxJsonBytes) {
    return InvalidArgument(what + ": " + std::to_string(text.size()) + " bytes is too large");
  }
  std::vector<std::set<std::string>> keys;
  const auto callback = [&keys](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (depth > static_cast<int>(kMaxJsonDepth)) {
      throw JsonAbort("nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    }
    switch (event) {
      case Json::parse_event_t::object_start: keys.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
          throw JsonAbort("duplicate key " + Quoted(parsed.get<std::string>()));
        }
        break;
      default: break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback);
  } catch (const JsonAbort& e) {
    return InvalidArgument(what + ": " + e.what());
  } catch (const Json::exception& e) {
    return InvalidArgument(what + ": invalid JSON: " + e.what());
  }
}

// Byte ranges of the members of the top-level object of a document that
// ParseStrictJson accepted. Keys are compared as written (Intel's keys have no
// escapes).
struct RawMember {
  std::string key;
  std::string_view value;
};

class RawScanner {
 public:
  explicit RawScanner(std::string_view t) : t_(t) {}

  StatusOr<std::vector<RawMember>> TopLevelMembers(const std::string& what) {
    std::vector<RawMember> out;
    SkipWs();
    if (!Eat('{')) return InvalidArgument(what + ": the document is not a JSON object");
    SkipWs();
    if (Eat('}')) return out;
    while (true) {
      SkipWs();
      const size_t key_start = pos_;
      if (!SkipString()) return Bad(what);
      std::string key(t_.substr(key_start + 1, pos_ - key_start - 2));
      SkipWs();
      if (!Eat(':')) return Bad(what);
      SkipWs();
      const size_t value_start = pos_;
      if (!SkipValue(0)) return Bad(what);
      out.push_back({std::move(key), t_.substr(value_start, pos_ - value_start)});
      SkipWs();
      if (Eat('}')) return out;
      if (!Eat(',')) return Bad(what);
    }
  }

 private:
  static Status Bad(const std::string& what) {
    return InvalidArgument(what + ": cannot delimit the top-level members");
  }
  bool Eat(char c) {
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void SkipWs() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool SkipString() {
    if (!Eat('"')) return false;
    while (pos_ < t_.size()) {
      const char c = t_[pos_++];
      if (c == '\\') {
        if (pos_ >= t_.size()) return false;
        ++pos_;
      } else if (c == '"') {
        return true;
      }
    }
    return false;
  }
  bool SkipValue(size_t depth) {
    if (depth > kMaxJsonDepth || pos_ >= t_.size()) return false;
    const char c = t_[pos_];
    if (c == '"') return SkipString();
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      SkipWs();
      if (Eat(close)) return true;
      while (true) {
        SkipWs();
        if (c == '{') {
          if (!SkipString()) return false;
          SkipWs();
          if (!Eat(':')) return false;
          SkipWs();
        }
        if (!SkipValue(depth + 1)) return false;
        SkipWs();
        if (Eat(close)) return true;
        if (!Eat(',')) return false;
      }
    }
    // number, true, false, null
    const size_t start = pos_;
    while (pos_ < t_.size() && t_[pos_] != ',' && t_[pos_] != '}' && t_[pos_] != ']' &&
           t_[pos_] != ' ' && t_[pos_] != '\t' && t_[pos_] != '\n' && t_[pos_] != '\r') {
      ++pos_;
    }
    return pos_ > start;
  }

  std::string_view t_;
  size_t pos_ = 0;
};

// ---- typed field access with paths ---------------------------------------------

class Fields {
 public:
  Fields(const Json& j, std::string path) : j_(j), path_(std::move(path)) {}

  static StatusOr<Fields> Object(const Json& j, std::string path) {
    if (!j.is_object()) return InvalidArgument(path + ": expected an object");
    return Fields(j, std::move(path));
  }

  std::string Path(std::string_view key) const { return path_ + "." + std::string(key); }
  bool Has(std::string_view key) const { return j_.contains(key); }

  StatusOr<const Json*> Get(std::string_view key) const {
    const auto it = j_.find(key);
    if (it == j_.end()) return InvalidArgument(Path(key) + ": missing");
    return &*it;
  }

  StatusOr<std::string> String(std::string_view key) const {
    ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_string()) return InvalidArgument(Path(key) + ": expected a string");
    return v->get<std::string>();
  }

  StatusOr<uint32_t> Unsigned(std::string_view key, uint32_t max) const {
    ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      return InvalidArgument(Path(key) + ": expected an integer in 0.." + std::to_string(max));
    }
    return static_cast<uint32_t>(v->get<uint64_t>());
  }

  StatusOr<int64_t> Time(std::string_view key) const {
    ASSIGN_OR_RETURN(std::string s, String(key));
    auto t = ParseRfc3339Utc(s);
    if (!t.ok()) return t.status().WithContext(Path(key));
    return *t;
  }

  template <size_t N>
  StatusOr<std::array<uint8_t, N>> Hex(std::string_view key) const {
    ASSIGN_OR_RETURN(std::string s, String(key));
    auto bytes = crypto::FromHex(s);
    if (!bytes.ok() || bytes->size() != N) {
      return InvalidArgument(Path(key) + ": expected " + std::to_string(2 * N) + " hex digits");
    }
    std::array<uint8_t, N> out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
  }

  StatusOr<const Json*> Array(std::string_view key) const {
    ASSIGN_OR_RETURN(const Json* v, Get(key));
    if (!v->is_array()) return InvalidArgument(Path(key) + ": expected an array");
    return v;
  }

  StatusOr<Fields> Sub(std::string_view key) const {
    ASSIGN_OR_RETURN(const Json* v, Get(key));
    return Object(*v, Path(key));
  }

 private:
  const Json& j_;
  std::string path_;
};

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

StatusOr<TcbLevelStatus> ParseLevelStatus(const Fields& f, std::string_view key, bool identity) {
  ASSIGN_OR_RETURN(std::string s, f.String(key));
  static const std::map<std::string, TcbLevelStatus, std::less<>> kAll = {
      {"UpToDate", TcbLevelStatus::kUpToDate},
      {"SWHardeningNeeded", TcbLevelStatus::kSWHardeningNeeded},
      {"ConfigurationNeeded", TcbLevelStatus::kConfigurationNeeded},
      {"ConfigurationAndSWHardeningNeeded", TcbLevelStatus::kConfigurationAndSWHardeningNeeded},
      {"OutOfDate", TcbLevelStatus::kOutOfDate},
      {"OutOfDateConfigurationNeeded", TcbLevelStatus::kOutOfDateConfigurationNeeded},
      {"Revoked", TcbLevelStatus::kRevoked},
  };
  const auto it = kAll.find(s);
  const bool allowed = it != kAll.end() && (!identity || it->second == TcbLevelStatus::kUpToDate ||
                                            it->second == TcbLevelStatus::kOutOfDate ||
                                            it->second == TcbLevelStatus::kRevoked);
  if (!allowed) return InvalidArgument(f.Path(key) + ": unknown TCB status " + Quoted(s));
  return it->second;
}

StatusOr<std::vector<std::string>> AdvisoryIds(const Fields& f) {
  std::vector<std::string> out;
  if (!f.Has("advisoryIDs")) return out;
  ASSIGN_OR_RETURN(const Json* a, f.Array("advisoryIDs"));
  for (size_t i = 0; i < a->size(); ++i) {
    if (!(*a)[i].is_string()) {
      return InvalidArgument(Index(f.Path("advisoryIDs"), i) + ": expected a string");
    }
    out.push_back((*a)[i].get<std::string>());
  }
  return out;
}

// Sixteen {"svn": N} objects.
StatusOr<std::array<uint8_t, 16>> Components(const Fields& f, std::string_view key) {
  ASSIGN_OR_RETURN(const Json* a, f.Array(key));
  if (a->size() != 16) {
    return InvalidArgument(f.Path(key) + ": expected 16 components, got " +
                           std::to_string(a->size()));
  }
  std::array<uint8_t, 16> out{};
  for (size_t i = 0; i < 16; ++i) {
    ASSIGN_OR_RETURN(Fields c, Fields::Object((*a)[i], Index(f.Path(key), i)));
    ASSIGN_OR_RETURN(uint32_t svn, c.Unsigned("svn", 255));
    out[i] = static_cast<uint8_t>(svn);
  }
  return out;
}

StatusOr<std::vector<IdentityTcbLevel>> IdentityLevels(const Fields& f) {
  ASSIGN_OR_RETURN(const Json* a, f.Array("tcbLevels"));
  std::vector<IdentityTcbLevel> out;
  for (size_t i = 0; i < a->size(); ++i) {
    ASSIGN_OR_RETURN(Fields l, Fields::Object((*a)[i], Index(f.Path("tcbLevels"), i)));
    IdentityTcbLevel level;
    ASSIGN_OR_RETURN(Fields tcb, l.Sub("tcb"));
    ASSIGN_OR_RETURN(uint32_t isvsvn, tcb.Unsigned("isvsvn", 65535));
    level.isv_svn = static_cast<uint16_t>(isvsvn);
    ASSIGN_OR_RETURN(level.tcb_date, l.Time("tcbDate"));
    ASSIGN_OR_RETURN(level.status, ParseLevelStatus(l, "tcbStatus", /*identity=*/true));
    ASSIGN_OR_RETURN(level.advisory_ids, AdvisoryIds(l));
    out.push_back(std::move(level));
  }
  if (out.empty()) return InvalidArgument(f.Path("tcbLevels") + ": empty");
  return out;
}

StatusOr<std::string> ReadSmallFile(const std::string& path) {
  auto text = ReadFile(path, kMaxFileBytes);
  if (!text.ok()) return text.status().WithContext(path);
  return text;
}

StatusOr<std::vector<crypto::Certificate>> ParseChain(std::string_view pem,
                                                      const std::string& what) {
  auto certs = crypto::ParseCertificatesPem(pem);
  if (!certs.ok()) return certs.status().WithContext(what);
  return certs;
}

// A CRL in DER, or in PEM (some PCCS deployments store PEM).
StatusOr<crypto::Crl> ParseCrlAny(std::string_view bytes, const std::string& what) {
  auto crl = bytes.find("-----BEGIN") != std::string_view::npos
                 ? crypto::ParseCrlPem(bytes)
                 : crypto::ParseCrlDer(crypto::AsBytes(bytes));
  if (!crl.ok()) return crl.status().WithContext(what);
  return crl;
}

StatusOr<std::array<uint8_t, 64>> ParseRawSignature(std::string_view hex, const std::string& what) {
  auto bytes = crypto::FromHex(hex);
  if (!bytes.ok() || bytes->size() != 64) {
    return InvalidArgument(what + ": expected 128 hex digits (raw r||s ECDSA P-256 signature)");
  }
  std::array<uint8_t, 64> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

enum class FileKind { kRegular, kDirectory, kMissing, kOther };

FileKind KindOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return FileKind::kMissing;
  if (S_ISREG(st.st_mode)) return FileKind::kRegular;
  if (S_ISDIR(st.st_mode)) return FileKind::kDirectory;
  return FileKind::kOther;
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

StatusOr<std::vector<std::string>> ListDirectory(const std::string& dir) {
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return ErrnoStatus("opendir " + dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = readdir(d.get())) {  // NOLINT(concurrency-mt-unsafe): own DIR*
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  if (errno != 0) return ErrnoStatus("readdir " + dir, errno);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string_view TcbLevelStatusName(TcbLevelStatus s) {
  switch (s) {
    case TcbLevelStatus::kUpToDate: return "UpToDate";
    case TcbLevelStatus::kSWHardeningNeeded: return "SWHardeningNeeded";
    case TcbLevelStatus::kConfigurationNeeded: return "ConfigurationNeeded";
    case TcbLevelStatus::kConfigurationAndSWHardeningNeeded:
      return "ConfigurationAndSWHardeningNeeded";
    case TcbLevelStatus::kOutOfDate: return "OutOfDate";
    case TcbLevelStatus::kOutOfDateConfigurationNeeded: return "OutOfDateConfigurationNeeded";
    case TcbLevelStatus::kRevoked: return "Revoked";
  }
  return "Revoked";
}

StatusOr<TcbInfo> ParseTcbInfo(std::string_view object) {
  ASSIGN_OR_RETURN(Json j, ParseStrictJson(object, "tcbInfo"));
  ASSIGN_OR_RETURN(Fields f, Fields::Object(j, "tcbInfo"));
  TcbInfo t;
  ASSIGN_OR_RETURN(t.id, f.String("id"));
  if (t.id != "TDX") return InvalidArgument("tcbInfo.id: " + Quoted(t.id) + " is not TDX");
  ASSIGN_OR_RETURN(t.version, f.Unsigned("version", 1000));
  if (t.version != 3) {
    return InvalidArgument("tcbInfo.version: " + std::to_string(t.version) +
                           " is not supported (want 3)");
  }
  ASSIGN_OR_RETURN(t.issue_date, f.Time("issueDate"));
  ASSIGN_OR_RETURN(t.next_update, f.Time("nextUpdate"));
  if (t.next_update <= t.issue_date) {
    return InvalidArgument("tcbInfo.nextUpdate: not after issueDate");
  }
  ASSIGN_OR_RETURN(t.fmspc, f.Hex<6>("fmspc"));
  ASSIGN_OR_RETURN(t.pce_id, f.Hex<2>("pceId"));
  ASSIGN_OR_RETURN(t.tcb_type, f.Unsigned("tcbType", 255));
  if (t.tcb_type != 0) {
    return InvalidArgument("tcbInfo.tcbType: " + std::to_string(t.tcb_type) +
                           " is not supported (want 0)");
  }
  ASSIGN_OR_RETURN(t.tcb_evaluation_data_number, f.Unsigned("tcbEvaluationDataNumber", UINT32_MAX));
  ASSIGN_OR_RETURN(Fields module, f.Sub("tdxModule"));
  ASSIGN_OR_RETURN(t.tdx_module_mrsigner, module.Hex<48>("mrsigner"));
  ASSIGN_OR_RETURN(t.tdx_module_attributes, module.Hex<8>("attributes"));
  ASSIGN_OR_RETURN(t.tdx_module_attributes_mask, module.Hex<8>("attributesMask"));
  if (f.Has("tdxModuleIdentities")) {
    ASSIGN_OR_RETURN(const Json* ids, f.Array("tdxModuleIdentities"));
    for (size_t i = 0; i < ids->size(); ++i) {
      ASSIGN_OR_RETURN(Fields m,
                       Fields::Object((*ids)[i], Index("tcbInfo.tdxModuleIdentities", i)));
      TdxModuleIdentity id;
      ASSIGN_OR_RETURN(id.id, m.String("id"));
      ASSIGN_OR_RETURN(id.mrsigner, m.Hex<48>("mrsigner"));
      ASSIGN_OR_RETURN(id.attributes, m.Hex<8>("attributes"));
      ASSIGN_OR_RETURN(id.attributes_mask, m.Hex<8>("attributesMask"));
      ASSIGN_OR_RETURN(id.tcb_levels, IdentityLevels(m));
      t.tdx_module_identities.push_back(std::move(id));
    }
  }
  ASSIGN_OR_RETURN(const Json* levels, f.Array("tcbLevels"));
  for (size_t i = 0; i < levels->size(); ++i) {
    ASSIGN_OR_RETURN(Fields l, Fields::Object((*levels)[i], Index("tcbInfo.tcbLevels", i)));
    TcbLevel level;
    ASSIGN_OR_RETURN(Fields tcb, l.Sub("tcb"));
    ASSIGN_OR_RETURN(level.sgx_components, Components(tcb, "sgxtcbcomponents"));
    ASSIGN_OR_RETURN(uint32_t pcesvn, tcb.Unsigned("pcesvn", 65535));
    level.pce_svn = static_cast<uint16_t>(pcesvn);
    ASSIGN_OR_RETURN(level.tdx_components, Components(tcb, "tdxtcbcomponents"));
    ASSIGN_OR_RETURN(level.tcb_date, l.Time("tcbDate"));
    ASSIGN_OR_RETURN(level.status, ParseLevelStatus(l, "tcbStatus", /*identity=*/false));
    ASSIGN_OR_RETURN(level.advisory_ids, AdvisoryIds(l));
    t.tcb_levels.push_back(std::move(level));
  }
  if (t.tcb_levels.empty()) return InvalidArgument("tcbInfo.tcbLevels: empty");
  return t;
}

StatusOr<QeIdentity> ParseQeIdentity(std::string_view object) {
  ASSIGN_OR_RETURN(Json j, ParseStrictJson(object, "enclaveIdentity"));
  ASSIGN_OR_RETURN(Fields f, Fields::Object(j, "enclaveIdentity"));
  QeIdentity q;
  ASSIGN_OR_RETURN(q.id, f.String("id"));
  if (q.id != "TD_QE") {
    return InvalidArgument("enclaveIdentity.id: " + Quoted(q.id) + " is not TD_QE");
  }
  ASSIGN_OR_RETURN(q.version, f.Unsigned("version", 1000));
  if (q.version != 2) {
    return InvalidArgument("enclaveIdentity.version: " + std::to_string(q.version) +
                           " is not supported (want 2)");
  }
  ASSIGN_OR_RETURN(q.issue_date, f.Time("issueDate"));
  ASSIGN_OR_RETURN(q.next_update, f.Time("nextUpdate"));
  if (q.next_update <= q.issue_date) {
    return InvalidArgument("enclaveIdentity.nextUpdate: not after issueDate");
  }
  ASSIGN_OR_RETURN(q.tcb_evaluation_data_number, f.Unsigned("tcbEvaluationDataNumber", UINT32_MAX));
  // MISCSELECT is written as 4 big-endian hex bytes, e.g. "00000000".
  ASSIGN_OR_RETURN(auto misc, f.Hex<4>("miscselect"));
  ASSIGN_OR_RETURN(auto misc_mask, f.Hex<4>("miscselectMask"));
  const auto be32 = [](const std::array<uint8_t, 4>& b) {
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  };
  q.miscselect = be32(misc);
  q.miscselect_mask = be32(misc_mask);
  ASSIGN_OR_RETURN(q.attributes, f.Hex<16>("attributes"));
  ASSIGN_OR_RETURN(q.attributes_mask, f.Hex<16>("attributesMask"));
  ASSIGN_OR_RETURN(q.mrsigner, f.Hex<32>("mrsigner"));
  ASSIGN_OR_RETURN(uint32_t prod, f.Unsigned("isvprodid", 65535));
  q.isv_prod_id = static_cast<uint16_t>(prod);
  ASSIGN_OR_RETURN(q.tcb_levels, IdentityLevels(f));
  return q;
}

StatusOr<SignedJson> SplitSignedJson(std::string_view text, std::string_view key,
                                     std::string_view source) {
  const std::string what(source);
  ASSIGN_OR_RETURN(Json doc, ParseStrictJson(text, what));
  if (!doc.is_object()) return InvalidArgument(what + ": expected a JSON object");
  RawScanner scanner(text);
  ASSIGN_OR_RETURN(std::vector<RawMember> members, scanner.TopLevelMembers(what));
  SignedJson out;
  bool have_body = false;
  bool have_signature = false;
  for (const RawMember& m : members) {
    if (m.key == key) {
      out.body = std::string(m.value);
      have_body = true;
    } else if (m.key == "signature") {
      if (!doc["signature"].is_string()) return InvalidArgument(what + ": signature: not a string");
      ASSIGN_OR_RETURN(out.signature, ParseRawSignature(doc["signature"].get<std::string>(),
                                                        what + ": signature"));
      have_signature = true;
    } else {
      return InvalidArgument(what + ": unexpected top-level field " + Quoted(m.key));
    }
  }
  if (!have_body) return InvalidArgument(what + ": missing " + Quoted(key));
  if (!have_signature) return InvalidArgument(what + ": missing 'signature'");
  return out;
}

StatusOr<Collateral> Collateral::FromDcapQvlJson(std::string_view text, std::string_view source) {
  const std::string what(source);
  ASSIGN_OR_RETURN(Json doc, ParseStrictJson(text, what));
  ASSIGN_OR_RETURN(Fields f, Fields::Object(doc, what));
  static const std::set<std::string, std::less<>> kKnown = {
      "pck_crl_issuer_chain",     "root_ca_crl", "pck_crl",
      "tcb_info_issuer_chain",    "tcb_info",    "tcb_info_signature",
      "qe_identity_issuer_chain", "qe_identity", "qe_identity_signature",
      "pck_certificate_chain"};  // the last: newer dcap-qvl; unused (the quote carries it)
  for (const auto& item : doc.items()) {
    if (kKnown.count(item.key()) == 0) {
      return InvalidArgument(what + ": unknown field " + Quoted(item.key()));
    }
  }
  Collateral c;
  c.source = what;
  ASSIGN_OR_RETURN(c.tcb_info_signed.body, f.String("tcb_info"));
  ASSIGN_OR_RETURN(std::string tcb_sig, f.String("tcb_info_signature"));
  ASSIGN_OR_RETURN(c.tcb_info_signed.signature,
                   ParseRawSignature(tcb_sig, f.Path("tcb_info_signature")));
  auto tcb = ParseTcbInfo(c.tcb_info_signed.body);
  if (!tcb.ok()) return tcb.status().WithContext(f.Path("tcb_info"));
  c.tcb_info = std::move(tcb).value();

  ASSIGN_OR_RETURN(c.qe_identity_signed.body, f.String("qe_identity"));
  ASSIGN_OR_RETURN(std::string qe_sig, f.String("qe_identity_signature"));
  ASSIGN_OR_RETURN(c.qe_identity_signed.signature,
                   ParseRawSignature(qe_sig, f.Path("qe_identity_signature")));
  auto qe = ParseQeIdentity(c.qe_identity_signed.body);
  if (!qe.ok()) return qe.status().WithContext(f.Path("qe_identity"));
  c.qe_identity = std::move(qe).value();

  ASSIGN_OR_RETURN(std::string tcb_chain, f.String("tcb_info_issuer_chain"));
  ASSIGN_OR_RETURN(c.tcb_info_issuer_chain, ParseChain(tcb_chain, f.Path("tcb_info_issuer_chain")));
  ASSIGN_OR_RETURN(std::string qe_chain, f.String("qe_identity_issuer_chain"));
  ASSIGN_OR_RETURN(c.qe_identity_issuer_chain,
                   ParseChain(qe_chain, f.Path("qe_identity_issuer_chain")));

  ASSIGN_OR_RETURN(std::string root_crl_hex, f.String("root_ca_crl"));
  auto root_crl = crypto::FromHex(root_crl_hex);
  if (!root_crl.ok()) return root_crl.status().WithContext(f.Path("root_ca_crl"));
  ASSIGN_OR_RETURN(crypto::Crl root,
                   ParseCrlAny(std::string_view(reinterpret_cast<const char*>(root_crl->data()),
                                                root_crl->size()),
                               f.Path("root_ca_crl")));
  c.root_ca_crl.push_back(root);

  // dcap-qvl always carries a PCK CRL; an empty string is taken as "none"
  // and then reported by the verifier as a missing PCK CRL.
  ASSIGN_OR_RETURN(std::string pck_crl_hex, f.String("pck_crl"));
  if (!pck_crl_hex.empty()) {
    auto pck_crl = crypto::FromHex(pck_crl_hex);
    if (!pck_crl.ok()) return pck_crl.status().WithContext(f.Path("pck_crl"));
    ASSIGN_OR_RETURN(crypto::Crl pck,
                     ParseCrlAny(std::string_view(reinterpret_cast<const char*>(pck_crl->data()),
                                                  pck_crl->size()),
                                 f.Path("pck_crl")));
    c.pck_crl.push_back(pck);
  }
  ASSIGN_OR_RETURN(std::string pck_chain, f.String("pck_crl_issuer_chain"));
  if (!pck_chain.empty()) {
    ASSIGN_OR_RETURN(c.pck_crl_issuer_chain, ParseChain(pck_chain, f.Path("pck_crl_issuer_chain")));
  }
  return c;
}

StatusOr<Collateral> Collateral::FromPcsDirectory(const std::string& dir) {
  static const std::set<std::string, std::less<>> kKnown = {"tcb_info.json",
                                                            "qe_identity.json",
                                                            "tcb_info_issuer_chain.pem",
                                                            "qe_identity_issuer_chain.pem",
                                                            "root_ca_crl.der",
                                                            "pck_crl.der",
                                                            "pck_crl_issuer_chain.pem"};
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  for (const std::string& name : names) {
    if (kKnown.count(name) == 0) {
      std::string message = dir;
      message += "/" + name;
      message +=
          ": unexpected file in a PCS collateral directory (see docs/attestation.md for "
          "the names)";
      return InvalidArgument(std::move(message));
    }
  }
  const auto has = [&names](std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  const auto path = [&dir](std::string_view name) { return dir + "/" + std::string(name); };

  Collateral c;
  c.source = dir;
  ASSIGN_OR_RETURN(std::string tcb_text, ReadSmallFile(path("tcb_info.json")));
  ASSIGN_OR_RETURN(c.tcb_info_signed, SplitSignedJson(tcb_text, "tcbInfo", path("tcb_info.json")));
  auto tcb = ParseTcbInfo(c.tcb_info_signed.body);
  if (!tcb.ok()) return tcb.status().WithContext(path("tcb_info.json"));
  c.tcb_info = std::move(tcb).value();

  ASSIGN_OR_RETURN(std::string qe_text, ReadSmallFile(path("qe_identity.json")));
  ASSIGN_OR_RETURN(c.qe_identity_signed,
                   SplitSignedJson(qe_text, "enclaveIdentity", path("qe_identity.json")));
  auto qe = ParseQeIdentity(c.qe_identity_signed.body);
  if (!qe.ok()) return qe.status().WithContext(path("qe_identity.json"));
  c.qe_identity = std::move(qe).value();

  ASSIGN_OR_RETURN(std::string tcb_chain, ReadSmallFile(path("tcb_info_issuer_chain.pem")));
  ASSIGN_OR_RETURN(c.tcb_info_issuer_chain,
                   ParseChain(tcb_chain, path("tcb_info_issuer_chain.pem")));
  if (has("qe_identity_issuer_chain.pem")) {
    ASSIGN_OR_RETURN(std::string qe_chain, ReadSmallFile(path("qe_identity_issuer_chain.pem")));
    ASSIGN_OR_RETURN(c.qe_identity_issuer_chain,
                     ParseChain(qe_chain, path("qe_identity_issuer_chain.pem")));
  } else {
    c.qe_identity_issuer_chain = c.tcb_info_issuer_chain;
  }

  ASSIGN_OR_RETURN(std::string root_crl, ReadSmallFile(path("root_ca_crl.der")));
  ASSIGN_OR_RETURN(crypto::Crl root, ParseCrlAny(root_crl, path("root_ca_crl.der")));
  c.root_ca_crl.push_back(root);
  if (has("pck_crl.der")) {
    ASSIGN_OR_RETURN(std::string pck_crl, ReadSmallFile(path("pck_crl.der")));
    ASSIGN_OR_RETURN(crypto::Crl pck, ParseCrlAny(pck_crl, path("pck_crl.der")));
    c.pck_crl.push_back(pck);
  }
  if (has("pck_crl_issuer_chain.pem")) {
    ASSIGN_OR_RETURN(std::string chain, ReadSmallFile(path("pck_crl_issuer_chain.pem")));
    ASSIGN_OR_RETURN(c.pck_crl_issuer_chain, ParseChain(chain, path("pck_crl_issuer_chain.pem")));
  }
  return c;
}

StatusOr<Collateral> Collateral::LoadDir(const std::string& path) {
  switch (KindOf(path)) {
    case FileKind::kRegular: {
      ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
      return FromDcapQvlJson(text, path);
    }
    case FileKind::kDirectory: {
      const std::string json = path + "/collateral.json";
      if (KindOf(json) == FileKind::kRegular) {
        ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(path));
        if (names.size() != 1) {
          return InvalidArgument(path +
                                 ": a directory with collateral.json must hold nothing else");
        }
        ASSIGN_OR_RETURN(std::string text, ReadSmallFile(json));
        return FromDcapQvlJson(text, json);
      }
      return FromPcsDirectory(path);
    }
    case FileKind::kMissing: return NotFound(path + ": no such file or directory");
    case FileKind::kOther: break;
  }
  return InvalidArgument(path + ": not a regular file or directory");
}

}  // namespace cce::attest

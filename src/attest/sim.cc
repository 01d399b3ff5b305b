#include "attest/sim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "attest/pck_cert.h"
#include "attest/time_util.h"
#include "base/fd.h"
#include "crypto/x509.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using crypto::ByteSpan;
using crypto::SecretBytes;
using Json = nlohmann::ordered_json;  // keeps Intel's field order in the signed bytes

// ---- the simulated platform -----------------------------------------------------
// Constants shared by the collateral (CreateSimulatedTee) and the quotes
// (BuildSimulatedQuote): the collateral is written so that a default
// SimulatedTd on this platform is UpToDate.

constexpr std::string_view kPckCaCommonName = "cce4long SIMULATED SGX PCK Platform CA - NOT INTEL";
constexpr std::string_view kPckLeafCommonName =
    "cce4long SIMULATED SGX PCK Certificate - NOT INTEL";
constexpr std::string_view kTcbSignerCommonName = "cce4long SIMULATED SGX TCB Signing - NOT INTEL";

constexpr std::array<uint8_t, 2> kPceId = {0x00, 0x00};
constexpr std::array<uint8_t, 16> kSgxTcbComponents = {2, 2, 2, 2, 3, 1, 0, 5};
constexpr uint16_t kPceSvn = 11;
constexpr uint32_t kSgxTypeScalable = 1;  // what Intel's PCK Platform CA issues
// TDX components of the two simulated TCB levels: the newest (UpToDate) and
// one below it (OutOfDate). Index 0 and 1 (module SVN and version) are judged
// by the TDX_01 module identity instead.
constexpr std::array<uint8_t, 16> kTdxComponentsUpToDate = {2, 1, 3};
constexpr std::array<uint8_t, 16> kTdxComponentsOutOfDate = {2, 1, 2};
constexpr uint16_t kModuleIsvSvn = 2;  // TDX_01 module level (UpToDate)
constexpr uint32_t kTcbEvaluationDataNumber = 1;

// The simulated TD QE.
constexpr uint16_t kQeIsvProdId = 2;  // as Intel's TD QE
constexpr uint16_t kQeIsvSvn = 4;
constexpr std::array<uint8_t, 16> kQeAttributes = {0x11};  // INIT | MODE64BIT
constexpr std::array<uint8_t, 16> kQeAttributesMask = {0xfb, 0xff, 0xff, 0xff,
                                                       0xff, 0xff, 0xff, 0xff};

// Signed, so a simulated quote says what it is even to a reader that only
// dumps the header.
constexpr std::string_view kUserDataMarker = "CCE4LONG SIMULATED";

// The TDX module's MRSIGNER: all zero, as Intel's.
constexpr Measurement kModuleMrSigner{};

crypto::Sha256Digest QeMrSigner() {
  return crypto::Sha256(crypto::AsBytes("cce4long SIMULATED TD QE signer - NOT INTEL"));
}
crypto::Sha256Digest QeMrEnclave() {
  return crypto::Sha256(crypto::AsBytes("cce4long SIMULATED TD QE"));
}

constexpr size_t kMaxSimFileBytes = size_t{64} << 10;

// ---- DER for the SGX extension ----------------------------------------------------

// 1.2.840.113741.1.13.1 (Intel SGX extensions).
constexpr std::array<uint8_t, 9> kSgxOid = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
constexpr std::string_view kSgxOidText = "1.2.840.113741.1.13.1";

Bytes Tlv(uint8_t tag, ByteSpan content) {
  Bytes out = {tag};
  const size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
  } else if (n <= 0xff) {
    out.insert(out.end(), {0x81, static_cast<uint8_t>(n)});
  } else {  // the extension is a few hundred bytes; nothing here needs more
    out.insert(out.end(), {0x82, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n & 0xff)});
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes Sequence(std::initializer_list<Bytes> items) {
  Bytes content;
  for (const Bytes& b : items) content.insert(content.end(), b.begin(), b.end());
  return Tlv(0x30, content);
}

Bytes SequenceOf(const std::vector<Bytes>& items) {
  Bytes content;
  for (const Bytes& b : items) content.insert(content.end(), b.begin(), b.end());
  return Tlv(0x30, content);
}

// The OID 1.2.840.113741.1.13.1.<arcs...>; every arc here is below 128.
Bytes SgxOid(std::initializer_list<uint8_t> arcs) {
  Bytes content(kSgxOid.begin(), kSgxOid.end());
  content.insert(content.end(), arcs.begin(), arcs.end());
  return Tlv(0x06, content);
}

// A non-negative INTEGER (tag 0x02) or ENUMERATED (0x0a), minimally encoded.
Bytes SmallUnsigned(uint8_t tag, uint32_t v) {
  Bytes content;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const auto byte = static_cast<uint8_t>(v >> shift);
    if (content.empty() && byte == 0 && shift > 0) continue;
    content.push_back(byte);
  }
  if ((content.front() & 0x80) != 0) content.insert(content.begin(), 0x00);
  return Tlv(tag, content);
}

Bytes Octets(ByteSpan b) {
  return Tlv(0x04, b);
}

Bytes Boolean(bool v) {
  const uint8_t b = v ? 0xff : 0x00;
  return Tlv(0x01, ByteSpan(&b, 1));
}

// The SGX extension of the simulated PCK leaf, with the fields and nesting
// of Intel's (PPID, TCB with 16 components + PCESVN + CPUSVN, PCE-ID, FMSPC,
// SGX type, platform instance id, configuration).
Bytes SgxExtension(const std::array<uint8_t, 16>& ppid,
                   const std::array<uint8_t, 16>& platform_instance_id) {
  std::vector<Bytes> tcb;
  for (uint8_t i = 0; i < 16; ++i) {
    tcb.push_back(Sequence(
        {SgxOid({2, static_cast<uint8_t>(i + 1)}), SmallUnsigned(0x02, kSgxTcbComponents[i])}));
  }
  tcb.push_back(Sequence({SgxOid({2, 17}), SmallUnsigned(0x02, kPceSvn)}));
  tcb.push_back(Sequence({SgxOid({2, 18}), Octets(kSgxTcbComponents)}));  // CPUSVN
  return Sequence({
      Sequence({SgxOid({1}), Octets(ppid)}),
      Sequence({SgxOid({2}), SequenceOf(tcb)}),
      Sequence({SgxOid({3}), Octets(kPceId)}),
      Sequence({SgxOid({4}), Octets(kSimFmspc)}),
      Sequence({SgxOid({5}), SmallUnsigned(0x0a, kSgxTypeScalable)}),
      Sequence({SgxOid({6}), Octets(platform_instance_id)}),
      Sequence({SgxOid({7}), Sequence({
                                 Sequence({SgxOid({7, 1}), Boolean(false)}),  // dynamicPlatform
                                 Sequence({SgxOid({7, 2}), Boolean(false)}),  // cachedKeys
                                 Sequence({SgxOid({7, 3}), Boolean(false)}),  // SMTEnabled
                             })}),
  });
}

// ---- collateral JSON ------------------------------------------------------------------

std::string UpperHex(ByteSpan b) {
  std::string s = crypto::ToHex(b);
  for (char& c : s) {
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

Json Components(const std::array<uint8_t, 16>& svns) {
  Json a = Json::array();
  for (uint8_t svn : svns) a.push_back(Json{{"svn", svn}});
  return a;
}

Json TcbLevelJson(const std::array<uint8_t, 16>& tdx, const std::string& date,
                  std::string_view status) {
  Json tcb;
  tcb["sgxtcbcomponents"] = Components(kSgxTcbComponents);
  tcb["pcesvn"] = kPceSvn;
  tcb["tdxtcbcomponents"] = Components(tdx);
  Json level;
  level["tcb"] = tcb;
  level["tcbDate"] = date;
  level["tcbStatus"] = status;
  return level;
}

std::string TcbInfoBody(int64_t issue, int64_t next_update) {
  const std::string issue_date = FormatRfc3339Utc(issue);
  const std::string module_mrsigner = UpperHex(kModuleMrSigner);
  Json t;
  t["id"] = "TDX";
  t["version"] = 3;
  t["issueDate"] = issue_date;
  t["nextUpdate"] = FormatRfc3339Utc(next_update);
  t["fmspc"] = UpperHex(kSimFmspc);
  t["pceId"] = UpperHex(kPceId);
  t["tcbType"] = 0;
  t["tcbEvaluationDataNumber"] = kTcbEvaluationDataNumber;
  t["tdxModule"] = Json{{"mrsigner", module_mrsigner},
                        {"attributes", "0000000000000000"},
                        {"attributesMask", "FFFFFFFFFFFFFFFF"}};
  Json module_level;
  module_level["tcb"] = Json{{"isvsvn", kModuleIsvSvn}};
  module_level["tcbDate"] = issue_date;
  module_level["tcbStatus"] = "UpToDate";
  Json module;
  module["id"] = "TDX_01";
  module["mrsigner"] = module_mrsigner;
  module["attributes"] = "0000000000000000";
  module["attributesMask"] = "FFFFFFFFFFFFFFFF";
  module["tcbLevels"] = Json::array({module_level});
  t["tdxModuleIdentities"] = Json::array({module});
  Json old_level = TcbLevelJson(kTdxComponentsOutOfDate, issue_date, "OutOfDate");
  old_level["advisoryIDs"] = Json::array({"CCE4LONG-SIM-0001"});
  t["tcbLevels"] =
      Json::array({TcbLevelJson(kTdxComponentsUpToDate, issue_date, "UpToDate"), old_level});
  return t.dump();
}

std::string QeIdentityBody(int64_t issue, int64_t next_update) {
  const std::string issue_date = FormatRfc3339Utc(issue);
  Json level;
  level["tcb"] = Json{{"isvsvn", kQeIsvSvn}};
  level["tcbDate"] = issue_date;
  level["tcbStatus"] = "UpToDate";
  Json q;
  q["id"] = "TD_QE";
  q["version"] = 2;
  q["issueDate"] = issue_date;
  q["nextUpdate"] = FormatRfc3339Utc(next_update);
  q["tcbEvaluationDataNumber"] = kTcbEvaluationDataNumber;
  q["miscselect"] = "00000000";
  q["miscselectMask"] = "FFFFFFFF";
  q["attributes"] = UpperHex(kQeAttributes);
  q["attributesMask"] = UpperHex(kQeAttributesMask);
  q["mrsigner"] = UpperHex(QeMrSigner());
  q["isvprodid"] = kQeIsvProdId;
  q["tcbLevels"] = Json::array({level});
  return q.dump();
}

// {"<key>":<body>,"signature":"<hex r||s>"}, the body's bytes exactly as signed.
StatusOr<std::string> SignedDocument(std::string_view key, const std::string& body,
                                     const SecretBytes& signer_key) {
  ASSIGN_OR_RETURN(Bytes sig, crypto::SignEcdsaP256Sha256(signer_key, crypto::AsBytes(body),
                                                          crypto::SignatureEncoding::kRawRS));
  return "{\"" + std::string(key) + "\":" + body + ",\"signature\":\"" + crypto::ToHex(sig) + "\"}";
}

// ---- files ----------------------------------------------------------------------------

Status WriteNewText(const std::string& path, std::string_view text, mode_t mode) {
  return ::cce::WriteNewFile(path, crypto::AsBytes(text), mode);
}

// Removes a directory this code created, unless released.
class CreatedDirGuard {
 public:
  explicit CreatedDirGuard(std::string path) : path_(std::move(path)) {}
  ~CreatedDirGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  CreatedDirGuard(const CreatedDirGuard&) = delete;
  CreatedDirGuard& operator=(const CreatedDirGuard&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// The PCK key into locked memory, refusing a key others can read.
StatusOr<SecretBytes> ReadPckKey(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    return PermissionDenied(path + ": the simulated PCK key is accessible by group or others " +
                            "(mode 0" + std::to_string((st.st_mode >> 6) & 7) +
                            std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                            "); want 0600");
  }
  if (st.st_size <= 0 || static_cast<uint64_t>(st.st_size) > kMaxSimFileBytes) {
    return InvalidArgument(path + ": " + std::to_string(st.st_size) +
                           " bytes is not a plausible PEM key");
  }
  SecretBytes key(static_cast<size_t>(st.st_size));
  ASSIGN_OR_RETURN(size_t n, PreadFull(fd.get(), key.span(), 0));
  if (n != key.size()) return DataLoss(path + ": file changed while reading");
  return key;
}

// ---- quote bytes ----------------------------------------------------------------------

class LittleEndianWriter {
 public:
  void U16(uint16_t v) {
    out_.push_back(static_cast<uint8_t>(v & 0xff));
    out_.push_back(static_cast<uint8_t>(v >> 8));
  }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
  }
  void Put(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void Zeros(size_t n) { out_.insert(out_.end(), n, 0); }
  size_t size() const { return out_.size(); }
  Bytes& bytes() { return out_; }

 private:
  Bytes out_;
};

StatusOr<uint32_t> Size32(size_t n, std::string_view what) {
  if (n > UINT32_MAX) return Internal(std::string(what) + ": too large");
  return static_cast<uint32_t>(n);
}

}  // namespace

Measurement SimulatedMeasurement(std::string_view text) {
  return crypto::Sha384(crypto::AsBytes(text));
}

Status CreateSimulatedTee(const std::string& dir, int64_t now_unix, int64_t validity_seconds) {
  // Up to year 9999 (RFC 3339 in the collateral, UTCTime/GeneralizedTime in
  // the certificates).
  constexpr int64_t kMaxUnixTime = 253402300799;
  if (now_unix < 0 || validity_seconds <= 0 || validity_seconds > kMaxUnixTime - now_unix) {
    return InvalidArgument("simulated TEE: validity " + std::to_string(now_unix) + " + " +
                           std::to_string(validity_seconds) + " s is empty or past year 9999");
  }
  if (dir.empty()) return InvalidArgument("simulated TEE: empty directory name");
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) {
      return AlreadyExists(dir + ": already exists; refusing to overwrite a simulated TEE");
    }
    return ErrnoStatus("mkdir " + dir, errno);
  }
  CreatedDirGuard guard(dir);
  const int64_t not_after = now_unix + validity_seconds;

  // The PKI: root -> PCK Platform CA -> PCK leaf, and root -> TCB signer.
  crypto::CertificateProfile root_profile;
  root_profile.common_name = std::string(kSimRootCommonName);
  root_profile.not_before_unix = now_unix;
  root_profile.not_after_unix = not_after;
  root_profile.is_ca = true;
  root_profile.path_length = 1;
  ASSIGN_OR_RETURN(crypto::IssuedCertificate root_issued,
                   crypto::IssueEcP256Certificate(root_profile, nullptr));
  const crypto::CertificateAuthority root{std::move(root_issued.cert_pem),
                                          std::move(root_issued.key_pem)};

  crypto::CertificateProfile ca_profile = root_profile;
  ca_profile.common_name = std::string(kPckCaCommonName);
  ca_profile.path_length = 0;
  ASSIGN_OR_RETURN(crypto::IssuedCertificate ca_issued,
                   crypto::IssueEcP256Certificate(ca_profile, &root));
  const crypto::CertificateAuthority pck_ca{std::move(ca_issued.cert_pem),
                                            std::move(ca_issued.key_pem)};

  std::array<uint8_t, 16> ppid{};
  std::array<uint8_t, 16> platform_instance_id{};
  RETURN_IF_ERROR(crypto::RandomBytes(ppid));
  RETURN_IF_ERROR(crypto::RandomBytes(platform_instance_id));
  crypto::CertificateProfile leaf_profile;
  leaf_profile.common_name = std::string(kPckLeafCommonName);
  leaf_profile.not_before_unix = now_unix;
  leaf_profile.not_after_unix = not_after;
  leaf_profile.extra_extensions.push_back(
      {std::string(kSgxOidText), false, SgxExtension(ppid, platform_instance_id)});
  ASSIGN_OR_RETURN(crypto::IssuedCertificate leaf,
                   crypto::IssueEcP256Certificate(leaf_profile, &pck_ca));

  crypto::CertificateProfile signer_profile;
  signer_profile.common_name = std::string(kTcbSignerCommonName);
  signer_profile.not_before_unix = now_unix;
  signer_profile.not_after_unix = not_after;
  ASSIGN_OR_RETURN(crypto::IssuedCertificate signer,
                   crypto::IssueEcP256Certificate(signer_profile, &root));

  ASSIGN_OR_RETURN(Bytes root_crl, crypto::CreateCrl(root, now_unix, not_after, {}, 1));
  ASSIGN_OR_RETURN(Bytes pck_crl, crypto::CreateCrl(pck_ca, now_unix, not_after, {}, 1));

  // The leaf must read back as the parser reads Intel's.
  ASSIGN_OR_RETURN(auto leaf_certs, crypto::ParseCertificatesPem(leaf.cert_pem));
  auto ext = ParsePckExtensions(leaf_certs.at(0).der());
  if (!ext.ok()) return ext.status().WithContext("simulated TEE: minted PCK leaf");

  ASSIGN_OR_RETURN(std::string tcb_info,
                   SignedDocument("tcbInfo", TcbInfoBody(now_unix, not_after), signer.key_pem));
  ASSIGN_OR_RETURN(
      std::string qe_identity,
      SignedDocument("enclaveIdentity", QeIdentityBody(now_unix, not_after), signer.key_pem));

  const std::string base = dir + "/";
  RETURN_IF_ERROR(WriteNewText(base + std::string(kSimRootFile), root.cert_pem, 0644));
  RETURN_IF_ERROR(WriteNewText(base + std::string(kSimPckChainFile),
                               leaf.cert_pem + pck_ca.cert_pem + root.cert_pem, 0644));
  RETURN_IF_ERROR(
      ::cce::WriteNewFile(base + std::string(kSimPckKeyFile), leaf.key_pem.span(), 0600));
  const std::string coll = base + std::string(kSimCollateralDir);
  if (::mkdir(coll.c_str(), 0755) != 0) return ErrnoStatus("mkdir " + coll, errno);
  RETURN_IF_ERROR(WriteNewText(coll + "/tcb_info.json", tcb_info, 0644));
  RETURN_IF_ERROR(WriteNewText(coll + "/qe_identity.json", qe_identity, 0644));
  RETURN_IF_ERROR(
      WriteNewText(coll + "/tcb_info_issuer_chain.pem", signer.cert_pem + root.cert_pem, 0644));
  RETURN_IF_ERROR(::cce::WriteNewFile(coll + "/root_ca_crl.der", root_crl, 0644));
  RETURN_IF_ERROR(::cce::WriteNewFile(coll + "/pck_crl.der", pck_crl, 0644));
  RETURN_IF_ERROR(
      WriteNewText(coll + "/pck_crl_issuer_chain.pem", pck_ca.cert_pem + root.cert_pem, 0644));
  guard.Release();
  return Status::Ok();
}

struct SimulatedQuoter::Impl {
  crypto::EcdhPrivateKey attestation_key;
  Bytes attestation_public;  // X || Y (64 bytes)
  Bytes certification;       // type 6 data: QE report, its signature, auth data, PCK chain
};

SimulatedQuoter::SimulatedQuoter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SimulatedQuoter::SimulatedQuoter(SimulatedQuoter&&) noexcept = default;
SimulatedQuoter& SimulatedQuoter::operator=(SimulatedQuoter&&) noexcept = default;
SimulatedQuoter::~SimulatedQuoter() = default;

StatusOr<SimulatedQuoter> SimulatedQuoter::Create(const std::string& sim_dir) {
  const std::string chain_path = sim_dir + "/" + std::string(kSimPckChainFile);
  auto chain_pem = ReadFile(chain_path, kMaxSimFileBytes);
  if (!chain_pem.ok()) return chain_pem.status().WithContext(chain_path);
  auto chain = crypto::ParseCertificatesPem(*chain_pem);
  if (!chain.ok()) return chain.status().WithContext(chain_path);
  if (chain->size() != 3) {
    return InvalidArgument(chain_path + ": " + std::to_string(chain->size()) +
                           " certificates (want PCK leaf, PCK CA, root)");
  }
  auto pck = ParsePckExtensions(chain->front().der());
  if (!pck.ok()) return pck.status().WithContext(chain_path);
  ASSIGN_OR_RETURN(SecretBytes pck_key, ReadPckKey(sim_dir + "/" + std::string(kSimPckKeyFile)));

  // One attestation key per "boot", as the real QE generates it.
  ASSIGN_OR_RETURN(crypto::EcdhPrivateKey attestation_key,
                   crypto::EcdhPrivateKey::Generate(crypto::EcdhCurve::kP256));
  ASSIGN_OR_RETURN(Bytes attestation_point, attestation_key.PublicKey());
  if (attestation_point.size() != 65) return Internal("simulated quote: attestation key size");
  Bytes attestation_public(attestation_point.begin() + 1, attestation_point.end());  // X||Y

  // QE authentication data as Intel's QE writes it: 32 bytes 0..31.
  Bytes qe_auth(32);
  for (size_t i = 0; i < qe_auth.size(); ++i) qe_auth[i] = static_cast<uint8_t>(i);
  crypto::Sha256Hasher binding;
  binding.Update(attestation_public);
  binding.Update(qe_auth);
  const crypto::Sha256Digest binding_hash = binding.Finish();

  LittleEndianWriter qe;
  qe.Put(pck->cpu_svn);
  qe.U32(0);  // MISCSELECT
  qe.Zeros(28);
  qe.Put(kQeAttributes);
  qe.Put(QeMrEnclave());
  qe.Zeros(32);
  qe.Put(QeMrSigner());
  qe.Zeros(96);
  qe.U16(kQeIsvProdId);
  qe.U16(kQeIsvSvn);
  qe.Zeros(60);
  qe.Put(binding_hash);
  qe.Zeros(32);
  if (qe.size() != kEnclaveReportSize) return Internal("simulated quote: QE report size");
  ASSIGN_OR_RETURN(Bytes qe_signature, crypto::SignEcdsaP256Sha256(
                                           pck_key, qe.bytes(), crypto::SignatureEncoding::kRawRS));

  // Certification data type 6: QE report, its signature, auth data, and the
  // nested type 5 PCK chain (PEM and one NUL, as Intel's QE writes it).
  Bytes pem(chain_pem->begin(), chain_pem->end());
  pem.push_back(0);
  LittleEndianWriter cert;
  cert.Put(qe.bytes());
  cert.Put(qe_signature);
  cert.U16(static_cast<uint16_t>(qe_auth.size()));
  cert.Put(qe_auth);
  cert.U16(kCertDataPckChain);
  ASSIGN_OR_RETURN(uint32_t pem_size, Size32(pem.size(), "PCK chain"));
  cert.U32(pem_size);
  cert.Put(pem);

  auto impl = std::make_unique<Impl>(
      Impl{std::move(attestation_key), std::move(attestation_public), std::move(cert.bytes())});
  return SimulatedQuoter(std::move(impl));
}

StatusOr<Bytes> SimulatedQuoter::Quote(const std::array<uint8_t, 64>& report_data,
                                       const SimulatedTd& td) const {
  // Header and TD report: what the attestation key signs.
  LittleEndianWriter q;
  q.U16(kQuoteVersion4);
  q.U16(kAttestationKeyEcdsaP256);
  q.U32(kTeeTypeTdx);
  q.U16(0);  // reserved in v4
  q.U16(0);
  q.Put(kIntelQeVendorId);  // the verifier requires Intel's QE vendor id
  std::array<uint8_t, 20> user_data{};
  std::copy(kUserDataMarker.begin(), kUserDataMarker.end(), user_data.begin());
  q.Put(user_data);
  q.Put(td.tee_tcb_svn);
  q.Put(td.mr_seam);
  q.Put(kModuleMrSigner);  // MRSIGNERSEAM
  q.Zeros(8);              // SEAMATTRIBUTES
  q.U64(td.td_attributes);
  q.U64(td.xfam);
  q.Put(td.mrtd);
  q.Put(td.mr_config_id);
  q.Put(td.mr_owner);
  q.Put(td.mr_owner_config);
  for (const Measurement& r : td.rtmr) q.Put(r);
  q.Put(report_data);
  if (q.size() != kHeaderSize + kTdReport10Size) return Internal("simulated quote: body size");
  ASSIGN_OR_RETURN(auto quote_signature, crypto::EcdsaP256SignSha256(impl_->attestation_key,
                                                                     q.bytes()));

  LittleEndianWriter sig;
  sig.Put(quote_signature);
  sig.Put(impl_->attestation_public);
  sig.U16(kCertDataQeReport);
  ASSIGN_OR_RETURN(uint32_t cert_size, Size32(impl_->certification.size(), "certification data"));
  sig.U32(cert_size);
  sig.Put(impl_->certification);

  ASSIGN_OR_RETURN(uint32_t sig_size, Size32(sig.size(), "signature data"));
  q.U32(sig_size);
  q.Put(sig.bytes());
  return std::move(q.bytes());
}

StatusOr<Bytes> BuildSimulatedQuote(const std::string& sim_dir,
                                    const std::array<uint8_t, 64>& report_data,
                                    const SimulatedTd& td) {
  ASSIGN_OR_RETURN(SimulatedQuoter quoter, SimulatedQuoter::Create(sim_dir));
  return quoter.Quote(report_data, td);
}

}  // namespace cce::attest

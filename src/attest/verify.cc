#include "attest/verify.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

#include "attest/p256_key.h"
#include "attest/time_util.h"

namespace cce::attest {
namespace {

using crypto::Bytes;
using crypto::ByteSpan;
using crypto::Certificate;
using crypto::ToHex;

// Intel SGX Root CA (public certificate; pinned by kIntelSgxRootCaSha256).
constexpr std::string_view kIntelSgxRootCaPem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw\n"
    "aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv\n"
    "cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ\n"
    "BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG\n"
    "A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0\n"
    "aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT\n"
    "AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7\n"
    "1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB\n"
    "uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ\n"
    "MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50\n"
    "ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV\n"
    "Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI\n"
    "KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg\n"
    "AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=\n"
    "-----END CERTIFICATE-----\n";

constexpr size_t kPckChainLength = 3;  // PCK leaf, PCK Platform/Processor CA, root
constexpr size_t kPckChainCacheEntries = 256;

std::string Quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string At(int64_t t) {
  return FormatRfc3339Utc(t);
}

// The canonical PEM of a certificate (64-column base64, '\n' line ends), as
// OpenSSL and Intel's Quoting Enclave write it.
std::string CanonicalPem(const Bytes& der) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  b64.reserve((der.size() + 2) / 3 * 4);
  for (size_t i = 0; i < der.size(); i += 3) {
    const uint32_t b0 = der[i];
    const uint32_t b1 = i + 1 < der.size() ? der[i + 1] : 0;
    const uint32_t b2 = i + 2 < der.size() ? der[i + 2] : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    b64 += kAlphabet[(v >> 18) & 63];
    b64 += kAlphabet[(v >> 12) & 63];
    b64 += i + 1 < der.size() ? kAlphabet[(v >> 6) & 63] : '=';
    b64 += i + 2 < der.size() ? kAlphabet[v & 63] : '=';
  }
  std::string out = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) {
    out += b64.substr(i, 64);
    out += '\n';
  }
  out += "-----END CERTIFICATE-----\n";
  return out;
}

// The CN attribute of an RFC 2253 name contains phrase.
bool CommonNameContains(const std::string& dn, std::string_view phrase) {
  size_t i = 0;
  while (i < dn.size()) {
    size_t end = i;
    while (end < dn.size() && dn[end] != ',') end += dn[end] == '\\' ? 2 : 1;
    end = std::min(end, dn.size());
    const std::string_view rdn(dn.data() + i, end - i);
    if (rdn.starts_with("CN=") && rdn.substr(3).find(phrase) != std::string_view::npos) {
      return true;
    }
    i = end + 1;
  }
  return false;
}

struct Anchor {
  const Certificate* root = nullptr;
  bool simulated = false;
};

Status CheckAnchors(const TrustAnchors& anchors) {
  for (const Certificate& sim : anchors.simulation_roots) {
    if (sim.der() == anchors.intel_root.der()) {
      return InvalidArgument("trust anchors: a simulation root is the Intel root itself");
    }
  }
  return Status::Ok();
}

// The anchor a chain ends at: its last certificate must be one of the
// anchors byte for byte (a chain of the signer alone is taken to end at
// intel_root).
StatusOr<Anchor> SelectAnchor(const std::vector<Certificate>& chain, const TrustAnchors& anchors,
                              const std::string& what) {
  if (chain.empty()) return InvalidArgument(what + ": empty certificate chain");
  const Certificate& top = chain.back();
  if (top.der() == anchors.intel_root.der() || chain.size() == 1) {
    return Anchor{&anchors.intel_root, false};
  }
  for (const Certificate& sim : anchors.simulation_roots) {
    if (top.der() == sim.der()) return Anchor{&sim, true};
  }
  return PermissionDenied(
      what + ": chain ends at " + Quoted(top.subject()) + " (sha256 " +
      ToHex(top.sha256_fingerprint()) + "), which is not the pinned Intel SGX Root CA (sha256 " +
      ToHex(anchors.intel_root.sha256_fingerprint()) + ") nor a configured simulation root");
}

Status CheckWindow(const std::string& what, int64_t from, int64_t until, int64_t now) {
  // Valid from `from` up to, not including, `until` (nextUpdate): the same
  // judgement OpenSSL makes for CRLs and certificates.
  if (now < from || now >= until) {
    return FailedPrecondition(what + ": not valid at " + At(now) + " (valid from " + At(from) +
                              " until " + At(until) + ")");
  }
  return Status::Ok();
}

// A collateral signing chain: signer issued directly by the anchor, with the
// root CRL, and the signature over the exact JSON bytes.
Status VerifySignedJson(const SignedJson& signed_json, const std::vector<Certificate>& chain,
                        const Anchor& anchor, const crypto::Crl& root_crl, int64_t now,
                        const std::string& what) {
  const Certificate& signer = chain.front();
  const std::vector<Certificate> rest(chain.begin() + 1, chain.end());
  auto verified = crypto::VerifyChain(signer, rest, *anchor.root, {root_crl}, now, {});
  if (!verified.ok()) return verified.status().WithContext(what + " issuer chain");
  if (verified->chain.size() != 2) {
    return PermissionDenied(what + " issuer chain: the signer " + Quoted(signer.subject()) +
                            " is not issued directly by the root");
  }
  if (!CommonNameContains(signer.subject(), "SGX TCB Signing")) {
    return PermissionDenied(what + " issuer chain: the signer " + Quoted(signer.subject()) +
                            " is not a TCB Signing certificate");
  }
  if (!signer.ec_p256_public_key().has_value()) {
    return PermissionDenied(what + ": the signer has no P-256 key");
  }
  auto ok =
      crypto::VerifyEcdsaP256Sha256(*signer.ec_p256_public_key(), crypto::AsBytes(signed_json.body),
                                    signed_json.signature, crypto::SignatureEncoding::kRawRS);
  if (!ok.ok()) return ok.status().WithContext(what + " signature");
  if (!*ok) {
    return PermissionDenied(what + ": signature does not verify with " + Quoted(signer.subject()));
  }
  return Status::Ok();
}

Status CheckOk(const StatusOr<bool>& r, const std::string& what) {
  if (!r.ok()) return PermissionDenied(what + ": " + r.status().message());
  if (!*r) return PermissionDenied(what + ": does not verify");
  return Status::Ok();
}

// What VerifyDcap derives from a PCK chain's bytes alone, none of which
// depends on time, anchors or collateral: the parsed certificates, whether
// the PEM is canonical, the leaf's SGX extension and its imported key.
struct ParsedPckChain {
  std::vector<Certificate> chain;
  bool canonical = false;
  Status extensions_status;  // of ParsePckExtensions(chain[0])
  PckExtensions extensions;
  std::shared_ptr<const P256PublicKey> leaf_key;  // null: the leaf has no (valid) P-256 key
};

// Parsed chains by the SHA-256 of their exact PEM bytes: a platform's chain
// is byte for byte the same in every quote it makes. Bounded (starts over
// when full), thread-safe; parse failures are not kept.
StatusOr<std::shared_ptr<const ParsedPckChain>> ParsePckChainEntry(std::string_view pem,
                                                                   const crypto::Sha256Digest& id) {
  static std::mutex mu;
  static std::map<crypto::Sha256Digest, std::shared_ptr<const ParsedPckChain>>* cache =
      new std::map<crypto::Sha256Digest, std::shared_ptr<const ParsedPckChain>>();
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = cache->find(id);
    if (it != cache->end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::vector<Certificate> certs, crypto::ParseCertificatesPem(pem));
  auto parsed = std::make_shared<ParsedPckChain>();
  parsed->chain = std::move(certs);
  std::string canonical;
  for (const Certificate& cert : parsed->chain) canonical += CanonicalPem(cert.der());
  parsed->canonical = canonical == pem;
  if (!parsed->chain.empty()) {
    const Certificate& leaf = parsed->chain.front();
    auto ext = ParsePckExtensions(leaf.der());
    parsed->extensions_status = ext.status();
    if (ext.ok()) parsed->extensions = *ext;
    if (leaf.ec_p256_public_key().has_value()) {
      auto key = P256PublicKey::Import(*leaf.ec_p256_public_key());
      if (key.ok()) parsed->leaf_key = *key;
    }
  }
  std::lock_guard<std::mutex> l(mu);
  if (cache->size() >= kPckChainCacheEntries) cache->clear();  // bounded; refilled by use
  cache->emplace(id, parsed);
  return std::shared_ptr<const ParsedPckChain>(std::move(parsed));
}

// SHA-256 over the collateral's CRLs (root, then PCK if any), each preceded
// by its length: what a verified PCK chain's revocation check depended on.
crypto::Sha256Digest CrlFingerprint(const Collateral& c) {
  crypto::Sha256Hasher h;
  for (const auto* list : {&c.root_ca_crl, &c.pck_crl}) {
    for (const crypto::Crl& crl : *list) {
      const uint64_t n = crl.der().size();
      uint8_t len[8];
      for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
      h.Update(crypto::ByteSpan(len, sizeof len));
      h.Update(crl.der());
    }
  }
  return h.Finish();
}

}  // namespace

const Certificate& PinnedIntelRoot() {
  static const Certificate kRoot = []() -> Certificate {
    auto certs = crypto::ParseCertificatesPem(kIntelSgxRootCaPem);
    // The embedded PEM is a constant of this file; a mismatch is a build defect.
    if (!certs.ok() || certs->size() != 1 ||
        ToHex(certs->front().sha256_fingerprint()) != kIntelSgxRootCaSha256) {
      std::abort();
    }
    return certs->front();
  }();
  return kRoot;
}

TrustAnchors IntelTrustAnchors() {
  return TrustAnchors{PinnedIntelRoot(), {}};
}

StatusOr<CollateralCheck> VerifyCollateral(const Collateral& c, const TrustAnchors& anchors,
                                           int64_t now) {
  RETURN_IF_ERROR(CheckAnchors(anchors));
  const std::string& src = c.source;
  if (c.root_ca_crl.size() != 1) {
    return FailedPrecondition(src + ": collateral needs exactly one root CA CRL");
  }
  if (c.pck_crl.size() > 1) return FailedPrecondition(src + ": more than one PCK CRL");
  if (c.tcb_info_issuer_chain.empty() || c.qe_identity_issuer_chain.empty()) {
    return FailedPrecondition(src + ": collateral issuer chains are missing");
  }
  const crypto::Crl& root_crl = c.root_ca_crl.front();

  RETURN_IF_ERROR(
      CheckWindow(src + ": tcb_info", c.tcb_info.issue_date, c.tcb_info.next_update, now));
  RETURN_IF_ERROR(
      CheckWindow(src + ": qe_identity", c.qe_identity.issue_date, c.qe_identity.next_update, now));
  RETURN_IF_ERROR(
      CheckWindow(src + ": root_ca_crl", root_crl.this_update(), root_crl.next_update(), now));
  if (!c.pck_crl.empty()) {
    RETURN_IF_ERROR(CheckWindow(src + ": pck_crl", c.pck_crl.front().this_update(),
                                c.pck_crl.front().next_update(), now));
  }

  ASSIGN_OR_RETURN(Anchor anchor,
                   SelectAnchor(c.tcb_info_issuer_chain, anchors, src + ": tcb_info issuer chain"));
  ASSIGN_OR_RETURN(Anchor qe_anchor, SelectAnchor(c.qe_identity_issuer_chain, anchors,
                                                  src + ": qe_identity issuer chain"));
  if (qe_anchor.root != anchor.root) {
    return PermissionDenied(src + ": tcb_info and qe_identity chain to different roots");
  }
  if (root_crl.issuer() != anchor.root->subject()) {
    return PermissionDenied(src + ": root_ca_crl is issued by " + Quoted(root_crl.issuer()) +
                            ", not by the root " + Quoted(anchor.root->subject()));
  }
  RETURN_IF_ERROR(VerifySignedJson(c.tcb_info_signed, c.tcb_info_issuer_chain, anchor, root_crl,
                                   now, src + ": tcb_info"));
  RETURN_IF_ERROR(VerifySignedJson(c.qe_identity_signed, c.qe_identity_issuer_chain, anchor,
                                   root_crl, now, src + ": qe_identity"));

  CollateralCheck out;
  out.simulated = anchor.simulated;
  out.root_sha256 = anchor.root->sha256_fingerprint();
  // Age is judged on the monthly items; the CRLs (the root CRL is reissued
  // yearly) are bounded by their own nextUpdate.
  out.oldest_issue_unix = std::min(c.tcb_info.issue_date, c.qe_identity.issue_date);
  out.earliest_expiry_unix =
      std::min({c.tcb_info.next_update, c.qe_identity.next_update, root_crl.next_update()});
  if (!c.pck_crl.empty()) {
    out.earliest_expiry_unix = std::min(out.earliest_expiry_unix, c.pck_crl.front().next_update());
  }
  return out;
}

StatusOr<std::shared_ptr<const std::vector<Certificate>>> ParsePckChainCached(
    std::string_view pem) {
  ASSIGN_OR_RETURN(std::shared_ptr<const ParsedPckChain> parsed,
                   ParsePckChainEntry(pem, crypto::Sha256(crypto::AsBytes(pem))));
  return std::shared_ptr<const std::vector<Certificate>>(parsed, &parsed->chain);
}

StatusOr<CheckedCollateral> CheckCollateralForReuse(const Collateral& c,
                                                    const TrustAnchors& anchors, int64_t now) {
  CheckedCollateral out;
  ASSIGN_OR_RETURN(out.check, VerifyCollateral(c, anchors, now));
  out.checked_at = now;
  out.crl_sha256 = CrlFingerprint(c);
  out.valid_until = out.check.earliest_expiry_unix;
  for (const auto* chain : {&c.tcb_info_issuer_chain, &c.qe_identity_issuer_chain}) {
    for (const Certificate& cert : *chain) {
      out.valid_until = std::min(out.valid_until, cert.not_after());
    }
  }
  return out;
}

StatusOr<DcapVerification> VerifyDcap(ByteSpan quote_bytes, const Collateral& collateral,
                                      const TrustAnchors& anchors, int64_t now,
                                      const CheckedCollateral* checked) {
  RETURN_IF_ERROR(CheckAnchors(anchors));
  DcapVerification v;
  ASSIGN_OR_RETURN(v.quote, ParseQuote(quote_bytes));
  const Quote& q = v.quote;
  if (q.header.qe_vendor_id != kIntelQeVendorId) {
    return PermissionDenied("quote: QE vendor id " + ToHex(q.header.qe_vendor_id) +
                            " is not Intel's (" + ToHex(kIntelQeVendorId) + ")");
  }

  // The PCK chain, exactly as the QE wrote it: three certificates in
  // canonical PEM, optionally followed by one NUL. No signature covers these
  // bytes, so any other form is refused rather than interpreted.
  std::string_view pem = q.pck_chain_pem;
  if (!pem.empty() && pem.back() == '\0') pem.remove_suffix(1);
  const crypto::Sha256Digest chain_id = crypto::Sha256(crypto::AsBytes(pem));
  auto parsed_chain = ParsePckChainEntry(pem, chain_id);
  if (!parsed_chain.ok()) return parsed_chain.status().WithContext("quote: PCK certificate chain");
  const ParsedPckChain& parsed = **parsed_chain;
  const std::vector<Certificate>& chain = parsed.chain;
  if (chain.size() != kPckChainLength) {
    return PermissionDenied("quote: PCK certificate chain has " + std::to_string(chain.size()) +
                            " certificates (want leaf, PCK CA, root)");
  }
  if (!parsed.canonical) {
    return InvalidArgument("quote: PCK certificate chain is not in canonical PEM form");
  }
  ASSIGN_OR_RETURN(Anchor anchor, SelectAnchor(chain, anchors, "quote: PCK certificate chain"));
  v.simulated = anchor.simulated;
  const Certificate& leaf = chain[0];
  const Certificate& pck_ca = chain[1];
  v.pck_subject = leaf.subject();
  v.pck_issuer = leaf.issuer();
  if (!CommonNameContains(leaf.subject(), "SGX PCK Certificate")) {
    return PermissionDenied("quote: PCK leaf " + Quoted(leaf.subject()) +
                            " is not an SGX PCK Certificate");
  }
  if (!CommonNameContains(pck_ca.subject(), "SGX PCK Platform CA") &&
      !CommonNameContains(pck_ca.subject(), "SGX PCK Processor CA")) {
    return PermissionDenied("quote: PCK issuer " + Quoted(pck_ca.subject()) +
                            " is not an SGX PCK Platform or Processor CA");
  }
  if (!parsed.extensions_status.ok()) {
    return parsed.extensions_status.WithContext("quote: PCK leaf");
  }
  v.pck = parsed.extensions;

  // A checked collateral stands inside its window, and only for the CRLs it
  // was checked with (a caller passing other collateral gets a full check).
  const bool reuse = checked != nullptr && checked->checked_at <= now &&
                     now < checked->valid_until &&
                     CrlFingerprint(collateral) == checked->crl_sha256;

  // Collateral first: it must be valid now and chain to the same anchor.
  CollateralCheck cc;
  if (reuse) {
    cc = checked->check;
  } else {
    ASSIGN_OR_RETURN(cc, VerifyCollateral(collateral, anchors, now));
  }
  if (cc.simulated != anchor.simulated || cc.root_sha256 != anchor.root->sha256_fingerprint()) {
    return PermissionDenied("the quote and the collateral chain to different roots (" +
                            std::string(anchor.simulated ? "simulation" : "Intel") + " and " +
                            std::string(cc.simulated ? "simulation" : "Intel") + ")");
  }
  v.collateral_oldest_issue_unix = cc.oldest_issue_unix;
  v.collateral_earliest_expiry_unix = cc.earliest_expiry_unix;
  v.tcb_evaluation_data_number = collateral.tcb_info.tcb_evaluation_data_number;

  // PCK chain with CRLs. A PCK CRL from the leaf's issuer checks the leaf;
  // without one the chain is still verified, the PCK CA is still checked
  // against the root CRL, and the missing leaf check is reported.
  const crypto::Crl& root_crl = collateral.root_ca_crl.front();
  const std::vector<Certificate> intermediates = {pck_ca};
  const bool have_pck_crl =
      !collateral.pck_crl.empty() && collateral.pck_crl.front().issuer() == leaf.issuer();
  // With a checked collateral, a chain verified against the same CRLs earlier
  // stands until one of its certificates or CRLs lapses.
  bool chain_ok = false;
  if (reuse) {
    std::lock_guard<std::mutex> l(checked->pck_chains->mu);
    auto it = checked->pck_chains->entries.find(chain_id);
    chain_ok = it != checked->pck_chains->entries.end() && it->second.from <= now &&
               now < it->second.until && it->second.pck_crl_checked == have_pck_crl;
  }
  if (!chain_ok && have_pck_crl) {
    auto r = crypto::VerifyChain(leaf, intermediates, *anchor.root,
                                 {collateral.pck_crl.front(), root_crl}, now, {});
    if (!r.ok()) return r.status().WithContext("quote: PCK certificate chain");
  } else if (!chain_ok) {
    crypto::ChainOptions no_crls;
    no_crls.require_crls = false;
    auto r = crypto::VerifyChain(leaf, intermediates, *anchor.root, {}, now, no_crls);
    if (!r.ok()) return r.status().WithContext("quote: PCK certificate chain");
    auto ca = crypto::VerifyChain(pck_ca, {}, *anchor.root, {root_crl}, now, {});
    if (!ca.ok()) return ca.status().WithContext("quote: PCK CA against the root CRL");
  }
  if (!chain_ok && reuse) {
    int64_t until = std::min({checked->valid_until, leaf.not_after(), pck_ca.not_after(),
                              anchor.root->not_after(), root_crl.next_update()});
    if (have_pck_crl) until = std::min(until, collateral.pck_crl.front().next_update());
    std::lock_guard<std::mutex> l(checked->pck_chains->mu);
    if (checked->pck_chains->entries.size() >= VerifiedPckChains::kMaxEntries) {
      checked->pck_chains->entries.clear();  // bounded; refilled by use
    }
    checked->pck_chains->entries[chain_id] = {now, until, have_pck_crl};
  }
  if (have_pck_crl) {
    v.pck_crl = PckCrlStatus::kChecked;
  } else {
    v.pck_crl = PckCrlStatus::kMissing;
    std::string why = collateral.pck_crl.empty() ? "the collateral has no PCK CRL"
                                                 : "the collateral's PCK CRL is from " +
                                                       Quoted(collateral.pck_crl.front().issuer());
    v.notes.push_back("PCK CRL missing: " + why + "; revocation of the PCK leaf (issued by " +
                      Quoted(leaf.issuer()) + ") was NOT checked");
  }

  // QE report: signed by the PCK leaf, and bound to the attestation key.
  if (parsed.leaf_key == nullptr) {
    return PermissionDenied("quote: PCK leaf has no P-256 key");
  }
  // With a checked collateral, the same report and signature already
  // verified with this chain's leaf key stand as long as the chain does
  // (VerifiedPckChains::qe_reports); anything else is verified.
  crypto::Sha256Digest qe_id{};
  bool qe_known = false;
  if (reuse) {
    crypto::Sha256Hasher h;
    h.Update(chain_id);
    h.Update(q.qe_report.raw);
    h.Update(q.qe_report_signature);
    qe_id = h.Finish();
    std::lock_guard<std::mutex> l(checked->pck_chains->mu);
    qe_known = checked->pck_chains->qe_reports.count(qe_id) != 0;
  }
  if (!qe_known) {
    RETURN_IF_ERROR(CheckOk(parsed.leaf_key->VerifyRawRs(q.qe_report.raw, q.qe_report_signature),
                            "quote: QE report signature (PCK leaf key)"));
    if (reuse) {
      std::lock_guard<std::mutex> l(checked->pck_chains->mu);
      auto& kept = checked->pck_chains->qe_reports;
      if (kept.size() >= VerifiedPckChains::kMaxEntries) kept.clear();  // bounded
      kept.insert(qe_id);
    }
  }
  Bytes binding(q.attestation_key.begin(), q.attestation_key.end());
  binding.insert(binding.end(), q.qe_auth_data.begin(), q.qe_auth_data.end());
  const crypto::Sha256Digest expected = crypto::Sha256(binding);
  const auto& rd = q.qe_report.report_data;
  const bool lower_ok = std::equal(expected.begin(), expected.end(), rd.begin());
  const bool upper_zero = std::all_of(rd.begin() + 32, rd.end(), [](uint8_t b) { return b == 0; });
  if (!lower_ok || !upper_zero) {
    return PermissionDenied("quote: QE report data " + ToHex(rd) +
                            " is not SHA-256(attestation key || QE auth data) " + ToHex(expected) +
                            " followed by 32 zero bytes");
  }

  // The quote signature over header || body with the attestation key.
  std::array<uint8_t, 65> point{};
  point[0] = 0x04;
  static_assert(sizeof(q.attestation_key) == 64);
  std::copy(q.attestation_key.begin(), q.attestation_key.end(), point.begin() + 1);
  auto attestation_key = P256PublicKey::ImportCached(point);
  if (!attestation_key.ok()) {
    return PermissionDenied("quote: signature over header and TD report (attestation key): " +
                            attestation_key.status().message());
  }
  RETURN_IF_ERROR(CheckOk((*attestation_key)->VerifyRawRs(q.signed_region, q.signature),
                          "quote: signature over header and TD report (attestation key)"));

  // Identity and TCB.
  ASSIGN_OR_RETURN(QeIdentityResult qe, CheckQeIdentity(collateral.qe_identity, q.qe_report));
  ASSIGN_OR_RETURN(v.tcb, EvaluateTcb(collateral.tcb_info, v.pck, q, qe));
  v.notes.insert(v.notes.end(), v.tcb.notes.begin(), v.tcb.notes.end());
  return v;
}

}  // namespace cce::attest

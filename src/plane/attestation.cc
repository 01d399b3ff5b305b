#include "plane/attestation.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "base/fd.h"
#include "crypto/x509.h"
#include "plane/plane.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;

StatusOr<attest::TrustAnchors> Anchors(const PlaneConfig& config, bool with_simulation) {
  attest::TrustAnchors anchors = attest::IntelTrustAnchors();
  if (!with_simulation) return anchors;
  const std::string path = config.Path(config.attestation_simulation_root_file);
  auto pem = ReadFile(path, 1 << 20);
  if (!pem.ok()) {
    return FailedPrecondition(
        "the attestation policy allows simulated TEEs but the simulation root " + path +
        " is unreadable (create it with `cce-plane init --simulated-tee`): " +
        pem.status().message());
  }
  ASSIGN_OR_RETURN(auto certs, crypto::ParseCertificatesPem(*pem));
  if (certs.size() != 1) return InvalidArgument(path + ": expected exactly one certificate");
  anchors.simulation_roots.push_back(std::move(certs[0]));
  return anchors;
}

std::string FmspcHex(const std::array<uint8_t, 6>& fmspc) {
  return crypto::ToHex(fmspc);
}

}  // namespace

StatusOr<std::unique_ptr<AttestationService>> AttestationService::Load(const PlaneConfig& config) {
  attest::Policy policy = attest::Policy::Default();
  const std::string policy_path = config.Path(config.attestation_policy_file);
  if (fs::exists(policy_path)) {
    ASSIGN_OR_RETURN(policy, attest::Policy::Load(policy_path));
  }
  ASSIGN_OR_RETURN(attest::TrustAnchors anchors, Anchors(config, policy.allow_simulated));
  std::unique_ptr<AttestationService> s(
      new AttestationService(config, std::move(policy), std::move(anchors)));
  RETURN_IF_ERROR(s->Reload());
  return s;
}

Status AttestationService::Reload() {
  std::map<std::string, attest::Collateral> loaded;
  const std::string dir = config_.Path(config_.attestation_collateral_dir);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // staging of an import in progress
      ASSIGN_OR_RETURN(attest::Collateral c, attest::Collateral::LoadDir(e.path().string()));
      loaded.emplace(FmspcHex(c.tcb_info.fmspc), std::move(c));
    }
    if (ec) return ErrnoStatus(dir, ec.value());
  }
  std::unique_lock<std::shared_mutex> l(mu_);
  collateral_ = std::move(loaded);
  return Status::Ok();
}

size_t AttestationService::collateral_sets() const {
  std::shared_lock<std::shared_mutex> l(mu_);
  return collateral_.size();
}

StatusOr<attest::Verification> AttestationService::Verify(crypto::ByteSpan quote,
                                                          crypto::ByteSpan expected_report_data,
                                                          int64_t now) {
  ASSIGN_OR_RETURN(attest::Quote q, attest::ParseQuote(quote));
  // The FMSPC picks the collateral: it is in the PCK leaf's SGX extension.
  ASSIGN_OR_RETURN(auto chain, crypto::ParseCertificatesPem(q.pck_chain_pem));
  if (chain.empty()) return InvalidArgument("quote: empty PCK certificate chain");
  ASSIGN_OR_RETURN(attest::PckExtensions pck, attest::ParsePckExtensions(chain[0].der()));
  const std::string fmspc = FmspcHex(pck.fmspc);
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      auto it = collateral_.find(fmspc);
      if (it != collateral_.end()) {
        return attest::VerifyQuote(quote, it->second, policy_, now, expected_report_data, anchors_);
      }
    }
    if (attempt == 0) RETURN_IF_ERROR(Reload());  // imported since start?
  }
  return FailedPrecondition("no collateral for FMSPC " + fmspc +
                            " in the plane's cache (cce-plane collateral import)");
}

StatusOr<std::string> ImportCollateralSet(const PlaneConfig& config, const std::string& source,
                                          bool with_simulation_root) {
  ASSIGN_OR_RETURN(attest::Collateral c, attest::Collateral::LoadDir(source));
  ASSIGN_OR_RETURN(attest::TrustAnchors anchors, Anchors(config, with_simulation_root));
  // Signatures and chains are checked as of the collateral's own issue time.
  const int64_t at = std::max(c.tcb_info.issue_date, c.qe_identity.issue_date);
  auto check = attest::VerifyCollateral(c, anchors, at);
  if (!check.ok()) return check.status().WithContext(source);
  const std::string fmspc = FmspcHex(c.tcb_info.fmspc);
  const std::string dir = config.Path(config.attestation_collateral_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(dir, ec.value());
  const bool is_dir = fs::is_directory(source, ec);
  const std::string final_path = dir + "/" + fmspc + (is_dir ? "" : ".json");
  const std::string stage =
      dir + "/.import-" + std::to_string(::getpid()) + (is_dir ? "" : ".json");
  fs::remove_all(stage, ec);
  if (is_dir) {
    fs::copy(source, stage, fs::copy_options::recursive, ec);
    if (ec) return ErrnoStatus(stage, ec.value());
  } else {
    ASSIGN_OR_RETURN(std::string text, ReadFile(source, size_t{16} << 20));
    RETURN_IF_ERROR(WriteFileAtomic(stage, crypto::AsBytes(text), 0644));
  }
  // The staged copy must load as the same set before it replaces the old one.
  auto again = attest::Collateral::LoadDir(stage);
  if (!again.ok() || FmspcHex(again->tcb_info.fmspc) != fmspc) {
    fs::remove_all(stage, ec);
    return Internal("collateral import: the staged copy does not load back");
  }
  fs::remove_all(final_path, ec);
  fs::rename(stage, final_path, ec);
  if (ec) return ErrnoStatus(final_path, ec.value());
  return fmspc;
}

StatusOr<std::string> ImportCollateral(const std::string& data_dir, const std::string& source) {
  ASSIGN_OR_RETURN(PlaneConfig config, LoadConfig(data_dir));
  const bool sim_root = fs::exists(config.Path(config.attestation_simulation_root_file));
  return ImportCollateralSet(config, source, sim_root);
}

}  // namespace cce::plane

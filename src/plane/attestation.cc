#include "plane/attestation.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <mutex>

#include "base/fd.h"
#include "crypto/x509.h"
#include "pcs/pcs_client.h"
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
  std::map<std::string, CachedSet> loaded;
  const std::string dir = config_.Path(config_.attestation_collateral_dir);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // staging of an import in progress
      ASSIGN_OR_RETURN(attest::Collateral c, attest::Collateral::LoadDir(e.path().string()));
      const std::string fmspc = FmspcHex(c.tcb_info.fmspc);
      loaded.emplace(fmspc, CachedSet{std::move(c), std::nullopt});
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
  std::string_view pem = q.pck_chain_pem;
  if (!pem.empty() && pem.back() == '\0') pem.remove_suffix(1);
  ASSIGN_OR_RETURN(auto chain, attest::ParsePckChainCached(pem));
  if (chain->empty()) return InvalidArgument("quote: empty PCK certificate chain");
  ASSIGN_OR_RETURN(attest::PckExtensions pck, attest::ParsePckExtensions((*chain)[0].der()));
  const std::string fmspc = FmspcHex(pck.fmspc);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::optional<attest::CheckedCollateral> checked;
    bool found = false;
    {
      std::shared_lock<std::shared_mutex> l(mu_);
      auto it = collateral_.find(fmspc);
      if (it != collateral_.end()) {
        found = true;
        checked = it->second.checked;
      }
    }
    if (found) {
      if (!checked || now < checked->checked_at || now >= checked->valid_until) {
        // Check the set (again); a failure is the verification's failure.
        std::unique_lock<std::shared_mutex> l(mu_);
        auto it = collateral_.find(fmspc);
        if (it == collateral_.end()) continue;
        auto fresh = attest::CheckCollateralForReuse(it->second.collateral, anchors_, now);
        if (!fresh.ok()) return fresh.status();
        it->second.checked = *fresh;
        checked = *fresh;
      }
      std::shared_lock<std::shared_mutex> l(mu_);
      auto it = collateral_.find(fmspc);
      if (it == collateral_.end()) continue;
      return attest::VerifyQuote(quote, it->second.collateral, policy_, now, expected_report_data,
                                 anchors_, &*checked);
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

StatusOr<std::string> FetchCollateral(const std::string& data_dir,
                                      const FetchCollateralOptions& options) {
  ASSIGN_OR_RETURN(PlaneConfig config, LoadConfig(data_dir));
  ASSIGN_OR_RETURN(auto fmspc, pcs::ParseFmspc(options.fmspc_hex));
  pcs::PcsOptions o;
  if (!options.pccs_url.empty()) {
    o.service = pcs::PcsService::kPccs;
    o.base_url = options.pccs_url;
  }
  o.ca_bundle = options.ca_bundle;
  if (!options.api_key_file.empty()) {  // read straight into locked memory
    UniqueFd fd(::open(options.api_key_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(options.api_key_file, errno);
    crypto::SecretBytes buf(4096);
    ASSIGN_OR_RETURN(size_t n, PreadFull(fd.get(), buf.span(), 0));
    while (n > 0 && (buf.data()[n - 1] == '\n' || buf.data()[n - 1] == '\r')) --n;
    if (n == 0 || n == buf.size()) {
      return InvalidArgument(options.api_key_file + ": expected one API key line");
    }
    o.api_key = crypto::SecretBytes(n);
    std::copy(buf.data(), buf.data() + n, o.api_key.data());
  }
  RETURN_IF_ERROR(pcs::ValidatePcsOptions(o));
  const std::string dir = config.Path(config.attestation_collateral_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ErrnoStatus(dir, ec.value());
  const std::string tmp = dir + "/.fetch-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  auto fetched = pcs::FetchTdxCollateral(o, fmspc, tmp);
  if (!fetched.ok()) return fetched.status();
  auto imported = ImportCollateral(data_dir, tmp);
  fs::remove_all(tmp, ec);
  return imported;
}

}  // namespace cce::plane

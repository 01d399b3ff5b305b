// The plane's side of the Ethereum ledger (docs/ledger.md): what clients see
// of the ledger (LedgerView) and the linking of consumers' addresses by an
// EIP-191 signature over a plane-issued challenge (Wallets).
#include <ctime>

#include "eth/eip191.h"
#include "eth/rental_market.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using store::AuditDecision;
using store::Role;

// "2026-12-06T16:00:00Z"
std::string IsoUtc(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

constexpr std::string_view kEmbeddedOnly =
    "this plane's ledger is embedded (ledger.backend): Ethereum wallets and chain dataset ids "
    "are for planes with ledger.backend ethereum";

}  // namespace

// ---- LedgerView --------------------------------------------------------------------

StatusOr<api::LedgerInfo> LedgerView::Info() {
  api::LedgerInfo out;
  out.backend = d_.ledger.backend();
  if (!d_.ethereum) return out;
  const EthereumSettings& e = *d_.ethereum;
  out.chain_id = static_cast<int64_t>(e.chain_id);
  out.contract = e.contract.Checksummed();
  out.confirmations = e.confirmations;
  out.rpc = e.rpc;
  out.plane_id = eth::PlaneId(d_.plane_public_key).Hex();
  ASSIGN_OR_RETURN(std::optional<store::ChainCursor> cursor, d_.db.GetChainCursor());
  if (cursor && cursor->next_block > 0) out.indexed_through = cursor->next_block - 1;
  std::lock_guard<std::mutex> l(mu_);
  out.last_sync_error = last_error_;
  return out;
}

StatusOr<api::LedgerDataset> LedgerView::Dataset(const std::string& name) {
  if (!d_.ethereum) return FailedPrecondition(std::string(kEmbeddedOnly));
  auto d = d_.db.GetDatasetByName(name);
  if (!d.ok()) {
    if (d.status().code() == StatusCode::kNotFound) {
      return NotFound("no dataset named '" + name + "'");
    }
    return d.status();
  }
  api::LedgerDataset out;
  out.dataset = d->name;
  out.chain_dataset_id = eth::ChainDatasetId(eth::PlaneId(d_.plane_public_key), d->id).Hex();
  out.chain_id = static_cast<int64_t>(d_.ethereum->chain_id);
  out.contract = d_.ethereum->contract.Checksummed();
  return out;
}

void LedgerView::RecordSync(const Status& result) {
  std::lock_guard<std::mutex> l(mu_);
  if (result.ok()) {
    last_error_.reset();
  } else {
    last_error_ = result.message();
  }
}

// ---- Wallets -----------------------------------------------------------------------

StatusOr<const EthereumSettings*> Wallets::Settings() const {
  if (!d_.ethereum) return FailedPrecondition(std::string(kEmbeddedOnly));
  return &*d_.ethereum;
}

StatusOr<api::WalletChallenge> Wallets::Challenge(const Caller& caller,
                                                  const api::WalletChallengeRequest& request) {
  ASSIGN_OR_RETURN(const EthereumSettings* e, Settings());
  ASSIGN_OR_RETURN(eth::Address address, eth::ParseAddress(request.address, "body.address"));
  // A linked address can never link again (links are permanent): say so now
  // rather than after the user signed.
  ASSIGN_OR_RETURN(auto links, d_.db.ListWalletLinks(std::nullopt));
  for (const auto& l : links) {
    if (l.address == address.Hex()) {
      return AlreadyExists("address " + address.Checksummed() + " is already linked" +
                           (l.user_id == caller.user.id ? " to you" : " to another user"));
    }
  }
  std::array<uint8_t, 16> random{};
  RETURN_IF_ERROR(crypto::RandomBytes(random));
  const std::string nonce = crypto::ToHex(random);
  const int64_t now = d_.clock.NowUnix();
  Pending p;
  p.user_id = caller.user.id;
  p.address = address;
  p.expires_at = now + kChallengeTtlSeconds;
  p.message = "cce4long wallet link\nplane: " + eth::PlaneId(d_.plane_public_key).Hex() +
              "\nchain: " + std::to_string(e->chain_id) + "\nuser: " + caller.user.name +
              "\naddress: " + address.Checksummed() + "\nnonce: " + nonce +
              "\nexpires: " + IsoUtc(p.expires_at);
  api::WalletChallenge out{p.message, nonce, p.expires_at};
  std::lock_guard<std::mutex> l(mu_);
  size_t outstanding = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.expires_at <= now) {
      it = pending_.erase(it);
      continue;
    }
    if (it->second.user_id == caller.user.id) ++outstanding;
    ++it;
  }
  if (outstanding >= kMaxChallengesPerUser) {
    return ResourceExhausted("you have " + std::to_string(outstanding) +
                             " unused wallet challenges (the most): use one or wait " +
                             std::to_string(kChallengeTtlSeconds / 60) + " minutes");
  }
  pending_.emplace(nonce, std::move(p));
  return out;
}

StatusOr<api::Wallet> Wallets::Link(const Caller& caller, const api::WalletLinkRequest& request) {
  RETURN_IF_ERROR(Settings().status());
  ASSIGN_OR_RETURN(eth::Address address, eth::ParseAddress(request.address, "body.address"));
  const std::string object = "wallet:" + address.Hex();
  auto deny = [&](const std::string& why) {
    return audit_.Deny(caller.actor(), "wallet.link", object, PermissionDenied(why),
                       {{"nonce", request.nonce.substr(0, 32)}});
  };
  const int64_t now = d_.clock.NowUnix();
  Pending p;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pending_.find(request.nonce);
    // Another user's challenge is refused like an unknown one, and stays
    // theirs: guessing or learning a nonce must not let anyone spend it.
    if (it == pending_.end() || it->second.user_id != caller.user.id) {
      return deny(
          "body.nonce: no such wallet challenge of yours (unknown, used or expired): "
          "ask for a new one");
    }
    p = std::move(it->second);
    pending_.erase(it);  // single use: spent by any attempt of its user
  }
  if (p.expires_at <= now) {
    return deny("body.nonce: the wallet challenge expired at " + IsoUtc(p.expires_at) +
                ": ask for a new one");
  }
  if (p.address != address) {
    return deny("body.address: the challenge was issued for " + p.address.Checksummed() + ", not " +
                address.Checksummed());
  }
  auto signer = eth::RecoverPersonalSigner(p.message, request.signature);
  if (!signer.ok()) return deny("body." + signer.status().message());
  if (*signer != address) {
    return deny("body.signature: signed by " + signer->Checksummed() + ", not by " +
                address.Checksummed() + " (sign the challenge's message with that address)");
  }
  store::WalletLink link{address.Hex(), caller.user.id, now};
  // Signed by the plane: Covers refuses a link written behind its back.
  ASSIGN_OR_RETURN(auto sig, d_.signing_key.Sign(store::WalletLinkSignatureMessage(link)));
  link.signature.assign(sig.begin(), sig.end());
  auto linked = d_.db.LinkWallet(
      link, audit_.Record(caller.actor(), "wallet.link", object, AuditDecision::kAllow,
                          {{"address", address.Checksummed()}, {"user", caller.user.name}}));
  if (!linked.ok()) {
    if (linked.status().code() == StatusCode::kAlreadyExists) {
      return audit_.Deny(caller.actor(), "wallet.link", object,
                         AlreadyExists("address " + address.Checksummed() + " is already linked"));
    }
    return linked.status();
  }
  return api::Wallet{address.Checksummed(), caller.user.name, linked->linked_at};
}

StatusOr<api::WalletList> Wallets::List(const Caller& caller) {
  RETURN_IF_ERROR(Settings().status());
  std::optional<int64_t> user;
  if (caller.user.role != Role::kOperator) user = caller.user.id;
  ASSIGN_OR_RETURN(auto links, d_.db.ListWalletLinks(user));
  api::WalletList out;
  for (const auto& l : links) {
    ASSIGN_OR_RETURN(eth::Address a, eth::ParseAddress(l.address, "stored wallet link"));
    out.wallets.push_back({a.Checksummed(), users_.NameOf(l.user_id), l.linked_at});
  }
  return out;
}

}  // namespace cce::plane

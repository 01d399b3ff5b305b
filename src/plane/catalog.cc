// The Catalog and Rentals services: datasets (their keys sealed under the
// master key on arrival) and the embedded ledger's rentals, with the one
// coverage check that job submission, the job engine and the key broker
// all use.
#include <openssl/crypto.h>

#include <ctime>

#include "format/format.h"
#include "plane/dataset_location.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::AuditDecision;
using store::Role;

bool IsDatasetName(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9'))) return false;
  return n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

// A user's value quoted for a message: at most 32 characters, printable ASCII
// only (anything else as '?').
std::string SafePrefix(std::string_view v) {
  std::string out = "'";
  for (char c : v.substr(0, 32)) out += (c >= 0x20 && c < 0x7f && c != '\'') ? c : '?';
  return out + (v.size() > 32 ? "'..." : "'");
}

bool IsPrice(const std::string& p) {
  size_t dot = p.find('.');
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dot == std::string::npos) return digits(p);
  return digits(std::string_view(p).substr(0, dot)) && digits(std::string_view(p).substr(dot + 1));
}

api::Dataset DatasetToWire(const store::Dataset& d, const std::string& owner) {
  return {d.name,
          owner,
          d.location,
          d.description,
          d.price,
          d.max_days,
          d.key_id,
          d.manifest_dataset_id,
          d.manifest_version,
          d.created_at};
}

api::Rental RentalToWire(const store::Rental& r, const std::string& dataset,
                         const std::string& consumer) {
  return {r.seq,
          dataset,
          consumer,
          r.start,
          r.end,
          r.created_at,
          crypto::ToHex(r.hash),
          crypto::ToHex(r.signature)};
}

constexpr std::string_view kLocationRefused =
    "body.location: the key does not open the dataset, or there is none: expected "
    "file:///DIR of an encrypted dataset beneath one of the plane's allowed dataset roots "
    "(datasets.allowed_roots; the plane's log has the reason)";

// Wipes the key text however Register returns.
struct KeyTextWiper {
  std::string& text;
  ~KeyTextWiper() { OPENSSL_cleanse(text.data(), text.size()); }
};

}  // namespace

StatusOr<api::Dataset> Catalog::Register(const Caller& caller,
                                         api::RegisterDatasetRequest request) {
  KeyTextWiper wipe{request.key};
  store::Dataset d;
  d.name = request.name;
  if (!IsDatasetName(d.name)) {
    return InvalidArgument(
        "body.name: expected a dataset name matching [a-z0-9][a-z0-9-]{0,62}" +
        std::string(d.name.empty() ? ", got an empty string" : ", got " + SafePrefix(d.name)));
  }
  d.location = request.location;
  RETURN_IF_ERROR(RefuseControlCharacters(d.location, "body.location"));
  d.description = request.description;
  d.price = request.price;
  if (!IsPrice(d.price)) {
    return InvalidArgument(
        "body.price: " +
        std::string(d.price.starts_with("-") ? "must not be negative; " : "") +
        "expected a decimal number of at most 18 digits before and after the point, such as "
        "\"10\" or \"2.50\" (the price per day)");
  }
  d.max_days = request.max_days.value_or(30);
  if (d.max_days < 1 || d.max_days > 3650) {
    return InvalidArgument("body.max_days: expected an integer in 1..3650, got " +
                           std::to_string(d.max_days));
  }
  auto key = format::DatasetKey::ParseKeyFile(request.key, "body.key");
  if (!key.ok()) return key.status();
  if (request.dataset_id.size() > 128) {
    return InvalidArgument("body.dataset_id: expected 1..128 characters");
  }
  RETURN_IF_ERROR(RefuseControlCharacters(request.dataset_id, "body.dataset_id"));
  if (request.dataset_version && *request.dataset_version < 1) {
    return InvalidArgument("body.dataset_version: expected a positive integer");
  }
  std::optional<OutputGate::Sealed> fingerprints;
  constexpr std::string_view kFile = "file://";
  if (d.location.rfind(kFile, 0) == 0) {
    std::string path = d.location.substr(kFile.size());
    if (path.empty() || path[0] != '/') {
      return InvalidArgument("body.location: expected file:///absolute/path");
    }
    // One answer for every failure (missing, outside the roots, a symlink,
    // a FIFO, not a dataset, another key): the details would tell a provider
    // what exists on the plane's file system. They go to the plane's log.
    auto m = [&]() -> StatusOr<format::Manifest> {
      ASSIGN_OR_RETURN(UniqueFd fd,
                       OpenDatasetManifest(d_.dataset_allowed_roots, path,
                                           static_cast<uint64_t>(d_.dataset_max_manifest_bytes)));
      return format::ReadManifestFromFd(fd.get(), *key, path + "/" + format::kManifestName);
    }();
    if (!m.ok()) {
      d_.log.Warn("dataset.location_refused", {{"dataset", d.name},
                                               {"user", caller.user.name},
                                               {"location", d.location},
                                               {"detail", m.status().message()}});
      return audit_.Deny(caller.actor(), "dataset.register", "dataset:" + d.name,
                         InvalidArgument(std::string(kLocationRefused)));
    }
    d.manifest_dataset_id = m->dataset_id;
    d.manifest_version = static_cast<int64_t>(m->dataset_version);
    ASSIGN_OR_RETURN(fingerprints, gate_.Fingerprint(d.name, path, *m, *key));
    // The provider may state what it means to register: a dataset it did
    // not mean (another id, an older version) is refused.
    if (!request.dataset_id.empty() && request.dataset_id != d.manifest_dataset_id) {
      return InvalidArgument("body.dataset_id: '" + request.dataset_id +
                             "', but the dataset's manifest says '" + d.manifest_dataset_id + "'");
    }
    if (request.dataset_version && *request.dataset_version != d.manifest_version) {
      return InvalidArgument("body.dataset_version: " + std::to_string(*request.dataset_version) +
                             ", but the dataset's manifest says " +
                             std::to_string(d.manifest_version));
    }
  } else if (d.location.rfind("s3://", 0) == 0 || d.location.rfind("juicefs://", 0) == 0) {
    // Not opened here: recorded as the provider gives them (no pin if not).
    d.manifest_dataset_id = request.dataset_id;
    d.manifest_version = request.dataset_version.value_or(0);
  } else {
    return InvalidArgument("body.location: expected file://, s3:// or juicefs://");
  }
  d.owner_id = caller.user.id;
  d.key_id = crypto::ToHex(key->id());
  ASSIGN_OR_RETURN(d.wrapped_key, d_.master_key.Seal(key->bytes(), "dataset-key:" + d.name));
  d.created_at = d_.clock.NowUnix();
  json details = {{"location", d.location}, {"key_id", d.key_id}};
  if (fingerprints) {
    details["fingerprints"] = {{"files", fingerprints->summary.files},
                               {"rows", fingerprints->summary.rows},
                               {"cells", fingerprints->summary.cells}};
  }
  ASSIGN_OR_RETURN(
      store::Dataset created,
      d_.db.CreateDataset(d, audit_.Record(caller.actor(), "dataset.register", "dataset:" + d.name,
                                           AuditDecision::kAllow, details)));
  if (fingerprints) {
    // The dataset is recorded: a failure here leaves it without an index,
    // and the gate holds every output that reads it (fail closed).
    Status stored = gate_.StoreFingerprints(d.name, *fingerprints);
    if (!stored.ok()) {
      d_.log.Error("gate.fingerprints_not_stored",
                   {{"dataset", d.name}, {"error", stored.message()}});
    }
  }
  return DatasetToWire(created, caller.user.name);
}

StatusOr<api::DatasetList> Catalog::List() {
  ASSIGN_OR_RETURN(auto list, d_.db.ListDatasets(std::nullopt));
  api::DatasetList out;
  for (const auto& d : list) out.datasets.push_back(DatasetToWire(d, users_.NameOf(d.owner_id)));
  return out;
}

StatusOr<api::Dataset> Catalog::Get(const std::string& name) {
  ASSIGN_OR_RETURN(store::Dataset d, d_.db.GetDatasetByName(name));
  return DatasetToWire(d, users_.NameOf(d.owner_id));
}

// ---- Rentals ---------------------------------------------------------------------

StatusOr<api::Rental> Rentals::Rent(const Caller& caller, const api::RentRequest& request) {
  if (d_.embedded == nullptr) {
    return audit_.Deny(caller.actor(), "rental.create", "dataset:" + request.dataset,
                       FailedPrecondition(std::string(kEthereumRentHint)),
                       {{"ledger", d_.ledger.backend()}});
  }
  auto d = d_.db.GetDatasetByName(request.dataset);
  if (!d.ok()) {
    if (d.status().code() == StatusCode::kNotFound) {
      return NotFound("body.dataset: no dataset named '" + request.dataset + "'");
    }
    return d.status();
  }
  if (request.days < 1 || request.days > d->max_days) {
    return InvalidArgument("body.days: expected an integer in 1.." + std::to_string(d->max_days) +
                           " (the longest rental of '" + request.dataset + "'), got " +
                           std::to_string(request.days));
  }
  const int64_t now = d_.clock.NowUnix();
  ASSIGN_OR_RETURN(
      store::Rental r,
      d_.embedded->Rent(caller.user.id, d->id, now, now + request.days * 86400, now,
                        audit_.Record(caller.actor(), "rental.create", "dataset:" + request.dataset,
                                      AuditDecision::kAllow,
                                      {{"days", request.days}, {"ledger", d_.ledger.backend()}})));
  return RentalToWire(r, request.dataset, caller.user.name);
}

StatusOr<api::RentalList> Rentals::List(const Caller& caller) {
  api::RentalList out;
  if (caller.user.role == Role::kReviewer) return out;  // reviewers see no rentals
  if (d_.embedded == nullptr) return ListChain(caller);
  store::RentalFilter f;
  f.limit = 10000;
  if (caller.user.role == Role::kConsumer) f.consumer_id = caller.user.id;
  ASSIGN_OR_RETURN(auto rentals, d_.db.ListRentals(f));
  for (const auto& r : rentals) {
    ASSIGN_OR_RETURN(store::Dataset d, d_.db.GetDataset(r.dataset_id));
    // Providers see rentals of their own datasets only.
    if (caller.user.role == Role::kProvider && d.owner_id != caller.user.id) continue;
    out.rentals.push_back(RentalToWire(r, d.name, users_.NameOf(r.consumer_id)));
  }
  return out;
}

// An ethereum plane's rentals: the Rented events the indexer stored, each
// with its transaction, block, payer and amount.
StatusOr<api::RentalList> Rentals::ListChain(const Caller& caller) {
  api::RentalList out;
  store::ChainRentalFilter f;
  f.limit = 10000;
  if (caller.user.role == Role::kConsumer) f.user_id = caller.user.id;
  ASSIGN_OR_RETURN(auto rentals, d_.db.ListChainRentals(f));
  ASSIGN_OR_RETURN(auto links, d_.db.ListWalletLinks(std::nullopt));
  std::map<std::string, int64_t> payer_user;
  for (const auto& l : links) payer_user[l.address] = l.user_id;
  std::map<int64_t, std::optional<store::Dataset>> datasets;
  for (const auto& r : rentals) {
    auto [it, fresh] = datasets.try_emplace(r.dataset_id);
    if (fresh) {
      auto d = d_.db.GetDataset(r.dataset_id);
      if (!d.ok() && d.status().code() != StatusCode::kNotFound) return d.status();
      if (d.ok()) it->second = std::move(*d);
    }
    if (!it->second) continue;
    // Providers see rentals of their own datasets only.
    if (caller.user.role == Role::kProvider && it->second->owner_id != caller.user.id) continue;
    auto payer = payer_user.find(r.payer);
    api::Rental w;
    w.dataset = it->second->name;
    w.consumer = payer == payer_user.end() ? "" : users_.NameOf(payer->second);
    w.start = r.start;
    w.end = r.end;
    w.created_at = r.indexed_at;
    w.tx_hash = r.tx_hash;
    w.block = r.block_number;
    w.payer = r.payer;
    w.amount_wei = r.amount_wei;
    out.rentals.push_back(std::move(w));
  }
  return out;
}

namespace {
// "2026-12-06 13:48:19Z": how a refusal names a moment.
std::string UtcTime(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

Status Rentals::CheckCoverage(int64_t consumer_id, const std::vector<std::string>& datasets,
                              int64_t from, int64_t until) {
  for (const auto& name : datasets) {
    auto ds = d_.db.GetDatasetByName(name);
    if (!ds.ok()) {
      if (ds.status().code() == StatusCode::kNotFound) {
        return NotFound("dataset '" + name + "' is not in the catalog");
      }
      return ds.status();
    }
    ASSIGN_OR_RETURN(bool covered, d_.ledger.Covers(consumer_id, ds->id, from, until));
    if (!covered) {
      // "... does not cover" stays the message's stem: clients and tests match it.
      return PermissionDenied("the rental of '" + name + "' does not cover " + UtcTime(from) +
                              " to " + UtcTime(until) + ": you have no rental of it for that time" +
                              " (rent it: cce rent " + name + " --days N" +
                              (d_.embedded == nullptr ? " --key-file F" : "") + ")");
    }
  }
  return Status::Ok();
}

}  // namespace cce::plane

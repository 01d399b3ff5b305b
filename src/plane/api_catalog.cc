// The dataset catalog and rentals: /api/v1/datasets, /api/v1/rentals.
#include <openssl/crypto.h>

#include "format/format.h"
#include "plane/api.h"

namespace cce::plane {
namespace {

bool IsDatasetName(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9'))) return false;
  return n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

bool IsPrice(const std::string& p) {
  size_t dot = p.find('.');
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (dot == std::string::npos) return digits(p);
  return digits(std::string_view(p).substr(0, dot)) && digits(std::string_view(p).substr(dot + 1));
}

json DatasetJson(const store::Dataset& d, const std::string& owner) {
  return {{"name", d.name},
          {"owner", owner},
          {"location", d.location},
          {"description", d.description},
          {"price", d.price},
          {"max_days", d.max_days},
          {"key_id", d.key_id},
          {"dataset_id", d.manifest_dataset_id},
          {"dataset_version", d.manifest_version},
          {"created_at", d.created_at}};
}

}  // namespace

void Api::RegisterCatalog(httplib::Server& svr) {
  // Register a dataset: the provider hands the plane's key broker its key,
  // which is sealed under the master key at once. A file:// location is
  // opened with the key, so a wrong key or a tampered manifest is refused.
  Route(svr, "POST", "/api/v1/datasets", {Role::kProvider},
        [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(Body b, Body::Parse(req, {"name", "location", "key", "description",
                                                     "price", "max_days"}));
          store::Dataset d;
          ASSIGN_OR_RETURN(d.name, b.String("name"));
          if (!IsDatasetName(d.name)) {
            return InvalidArgument("body.name: '" + d.name + "': expected [a-z0-9][a-z0-9-]{0,62}");
          }
          ASSIGN_OR_RETURN(d.location, b.String("location"));
          ASSIGN_OR_RETURN(d.description, b.String("description", ""));
          ASSIGN_OR_RETURN(d.price, b.String("price", "0"));
          if (!IsPrice(d.price)) return InvalidArgument("body.price: expected a decimal number");
          ASSIGN_OR_RETURN(d.max_days, b.Int("max_days", 1, 3650, 30));
          ASSIGN_OR_RETURN(std::string key_text, b.String("key"));
          auto key = format::DatasetKey::ParseKeyFile(key_text, "body.key");
          OPENSSL_cleanse(key_text.data(), key_text.size());
          if (!key.ok()) return key.status();
          constexpr std::string_view kFile = "file://";
          if (d.location.rfind(kFile, 0) == 0) {
            std::string path = d.location.substr(kFile.size());
            if (path.empty() || path[0] != '/') {
              return InvalidArgument("body.location: expected file:///absolute/path");
            }
            auto m = format::ReadManifest(path, *key);
            if (!m.ok()) {
              return InvalidArgument("body.location: the key does not open the dataset: " +
                                     m.status().message());
            }
            d.manifest_dataset_id = m->dataset_id;
            d.manifest_version = static_cast<int64_t>(m->dataset_version);
          } else if (d.location.rfind("s3://", 0) != 0 && d.location.rfind("juicefs://", 0) != 0) {
            return InvalidArgument("body.location: expected file://, s3:// or juicefs://");
          }
          d.owner_id = c.user.id;
          d.key_id = crypto::ToHex(key->id());
          ASSIGN_OR_RETURN(d.wrapped_key, master_key_.Seal(key->bytes(), "dataset-key:" + d.name));
          d.created_at = clock_.NowUnix();
          ASSIGN_OR_RETURN(
              store::Dataset created,
              db_.CreateDataset(
                  d,
                  AuditFor(c, "dataset.register", "dataset:" + d.name, store::AuditDecision::kAllow,
                           json{{"location", d.location}, {"key_id", d.key_id}}.dump())));
          return ApiResult{201, DatasetJson(created, c.user.name)};
        });
  Route(svr, "GET", "/api/v1/datasets", {},
        [this](const Caller&, const httplib::Request&) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(auto list, db_.ListDatasets(std::nullopt));
          json arr = json::array();
          for (const auto& d : list) arr.push_back(DatasetJson(d, OwnerName(d.owner_id)));
          return ApiResult{200, {{"datasets", arr}}};
        });
  Route(svr, "GET", R"(/api/v1/datasets/([a-z0-9-]+))", {},
        [this](const Caller&, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(store::Dataset d, db_.GetDatasetByName(req.matches[1].str()));
          return ApiResult{200, DatasetJson(d, OwnerName(d.owner_id))};
        });
  // Rent a dataset from now for `days` days (at most the dataset's max_days).
  Route(svr, "POST", "/api/v1/rentals", {Role::kConsumer},
        [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
          ASSIGN_OR_RETURN(Body b, Body::Parse(req, {"dataset", "days"}));
          ASSIGN_OR_RETURN(std::string name, b.String("dataset"));
          auto d = db_.GetDatasetByName(name);
          if (!d.ok()) {
            if (d.status().code() == StatusCode::kNotFound) {
              return NotFound("body.dataset: no dataset named '" + name + "'");
            }
            return d.status();
          }
          ASSIGN_OR_RETURN(int64_t days, b.Int("days", 1, d->max_days));
          int64_t now = clock_.NowUnix();
          ASSIGN_OR_RETURN(
              store::Rental r,
              ledger_.Rent(
                  c.user.id, d->id, now, now + days * 86400, now,
                  AuditFor(c, "rental.create", "dataset:" + name, store::AuditDecision::kAllow,
                           json{{"days", days}, {"ledger", ledger_.backend()}}.dump())));
          return ApiResult{201, RentalJson(r, name, c.user.name)};
        });
  Route(svr, "GET", "/api/v1/rentals", {},
        [this](const Caller& c, const httplib::Request&) -> StatusOr<ApiResult> {
          store::RentalFilter f;
          f.limit = 10000;
          if (c.user.role == Role::kConsumer) f.consumer_id = c.user.id;
          ASSIGN_OR_RETURN(auto rentals, db_.ListRentals(f));
          json arr = json::array();
          for (const auto& r : rentals) {
            ASSIGN_OR_RETURN(store::Dataset d, db_.GetDataset(r.dataset_id));
            // Providers see rentals of their own datasets only; reviewers none.
            if (c.user.role == Role::kProvider && d.owner_id != c.user.id) continue;
            if (c.user.role == Role::kReviewer) continue;
            arr.push_back(RentalJson(r, d.name, OwnerName(r.consumer_id)));
          }
          return ApiResult{200, {{"rentals", arr}}};
        });
}

}  // namespace cce::plane

// cce-plane serve: the HTTPS JSON API (docs/api.yaml). One wrapper per
// handler turns Status and exceptions into JSON errors (the only place
// exceptions are caught), checks authentication and the caller's role, and
// records metrics and a structured access log line.
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "format/format.h"
#include "ledger/ledger.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/log.h"
#include "plane/master_key.h"
#include "plane/plane.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::Role;

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
    case StatusCode::kIo: return 500;
  }
  return 500;
}

std::string ErrorCodeName(StatusCode code) {
  std::string s(StatusCodeName(code));
  for (char& c : s) c = c == ' ' ? '_' : c;
  return s;
}

json ErrorBody(const std::string& code, const std::string& message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

// Prometheus text-format metrics: request counts and a latency histogram.
class Metrics {
 public:
  void Observe(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> l(mu_);
    ++requests_[route + "\",status=\"" + std::to_string(status)];
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      if (seconds <= kBuckets[i]) ++buckets_[i];
    }
    ++count_;
    sum_ += seconds;
  }
  std::string Render() {
    std::lock_guard<std::mutex> l(mu_);
    std::string out =
        "# HELP cce_http_requests_total HTTP requests by route and status.\n"
        "# TYPE cce_http_requests_total counter\n";
    for (const auto& [k, v] : requests_) {
      out += "cce_http_requests_total{route=\"" + k + "\"} " + std::to_string(v) + "\n";
    }
    out +=
        "# HELP cce_http_request_duration_seconds Request latency.\n"
        "# TYPE cce_http_request_duration_seconds histogram\n";
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out += "cce_http_request_duration_seconds_bucket{le=\"" + std::to_string(kBuckets[i]) +
             "\"} " + std::to_string(buckets_[i]) + "\n";
    }
    out += "cce_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
    out += "cce_http_request_duration_seconds_sum " + std::to_string(sum_) + "\n";
    out += "cce_http_request_duration_seconds_count " + std::to_string(count_) + "\n";
    return out;
  }

 private:
  static constexpr std::array<double, 8> kBuckets = {0.001, 0.005, 0.01, 0.025,
                                                     0.05,  0.1,   0.5,  1.0};
  std::mutex mu_;  // guards every member below
  std::map<std::string, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct Caller {
  store::User user;
  std::string actor() const { return "user:" + user.name; }
};

// NOLINTNEXTLINE(bugprone-exception-escape): clang-tidy cannot see json's noexcept move.
struct ApiResult {
  int status = 200;
  json body;
};

class Api {
 public:
  Api(store::Store& db, Logger& log, const Clock& clock, MasterKey& master_key,
      ledger::EmbeddedLedger& ledger)
      : db_(db), log_(log), clock_(clock), master_key_(master_key), ledger_(ledger) {}

  void Register(httplib::Server& svr) {
    svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
    });
    Route(svr, "GET", "/api/v1/whoami", {}, [](const Caller& c, const httplib::Request&) {
      return StatusOr<ApiResult>(ApiResult{200, UserJson(c.user)});
    });
    Route(svr, "GET", "/api/v1/users", {Role::kOperator},
          [this](const Caller&, const httplib::Request&) -> StatusOr<ApiResult> {
            ASSIGN_OR_RETURN(auto users, db_.ListUsers());
            json arr = json::array();
            for (const auto& u : users) arr.push_back(UserJson(u));
            return ApiResult{200, {{"users", arr}}};
          });
    Route(svr, "POST", "/api/v1/users", {Role::kOperator},
          [this](const Caller& c, const httplib::Request& req) -> StatusOr<ApiResult> {
            ASSIGN_OR_RETURN(json body, ParseBody(req));
            if (!body.is_object() || !body.contains("name") || !body["name"].is_string() ||
                !body.contains("role") || !body["role"].is_string()) {
              return InvalidArgument("body: expected {\"name\": string, \"role\": string}");
            }
            for (const auto& [k, v] : body.items()) {
              if (k != "name" && k != "role")
                return InvalidArgument("body." + k + ": unknown field");
            }
            ASSIGN_OR_RETURN(Role role, store::ParseRole(body["role"].get<std::string>()));
            ASSIGN_OR_RETURN(std::string token, NewApiToken());
            store::User u;
            u.name = body["name"].get<std::string>();
            u.role = role;
            u.token_hash = HashApiToken(token);
            u.created_at = clock_.NowUnix();
            store::AuditRecord a =
                AuditFor(c, "user.add", "user:" + u.name, store::AuditDecision::kAllow);
            ASSIGN_OR_RETURN(store::User created, db_.CreateUser(u, a));
            json out = UserJson(created);
            out["token"] = token;
            return ApiResult{201, out};
          });
    RegisterCatalog(svr);
  }

 private:
  void RegisterCatalog(httplib::Server& svr);
  using Handler = std::function<StatusOr<ApiResult>(const Caller&, const httplib::Request&)>;

  std::string OwnerName(int64_t user_id) {
    auto u = db_.GetUser(user_id);
    return u.ok() ? u->name : "user#" + std::to_string(user_id);
  }

  static json RentalJson(const store::Rental& r, const std::string& dataset,
                         const std::string& consumer) {
    return {{"seq", r.seq},
            {"dataset", dataset},
            {"consumer", consumer},
            {"start", r.start},
            {"end", r.end},
            {"created_at", r.created_at},
            {"hash", crypto::ToHex(r.hash)},
            {"signature", crypto::ToHex(r.signature)}};
  }

  static json UserJson(const store::User& u) {
    return {{"id", u.id},
            {"name", u.name},
            {"role", std::string(store::RoleName(u.role))},
            {"created_at", u.created_at},
            {"disabled", u.disabled}};
  }

  store::AuditRecord AuditFor(const Caller& c, std::string action, std::string object,
                              store::AuditDecision d, std::string details = "{}") const {
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = c.actor();
    a.action = std::move(action);
    a.object = std::move(object);
    a.decision = d;
    a.details_json = std::move(details);
    return a;
  }

  static StatusOr<json> ParseBody(const httplib::Request& req) {
    json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
    return j;
  }

  // Authenticates the bearer token; every failure is audited (deny).
  StatusOr<Caller> Authenticate(const httplib::Request& req) {
    std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    std::string why;
    if (h.rfind(kBearer, 0) != 0) {
      why = "missing bearer token";
    } else {
      auto user = db_.GetUserByTokenHash(HashApiToken(std::string_view(h).substr(kBearer.size())));
      if (user.ok() && !user->disabled) return Caller{*user};
      if (!user.ok() && user.status().code() != StatusCode::kNotFound) return user.status();
      why = user.ok() ? "user disabled" : "unknown token";
    }
    store::AuditRecord a;
    a.at = clock_.NowUnix();
    a.actor = "remote:" + req.remote_addr;
    a.action = "authn";
    a.object = req.method + " " + req.path;
    a.decision = store::AuditDecision::kDeny;
    a.details_json = json{{"reason", why}}.dump();
    (void)db_.AppendAudit(a);
    return Status(StatusCode::kPermissionDenied, "unauthenticated: " + why);
  }

  void Route(httplib::Server& svr, const std::string& method, const std::string& pattern,
             const std::vector<Role>& roles, const Handler& handler) {
    auto wrapped = [this, pattern, roles, handler](const httplib::Request& req,
                                                   httplib::Response& res) {
      auto start = std::chrono::steady_clock::now();
      ApiResult result;
      try {
        result = Handle(req, roles, handler);
      } catch (const std::exception& e) {
        log_.Error("handler.exception", {{"route", pattern}, {"what", e.what()}});
        result = {500, ErrorBody("internal", "internal error")};
      }
      res.status = result.status;
      res.set_content(result.body.dump(-1, ' ', false, json::error_handler_t::replace),
                      "application/json");
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_.Observe(pattern, result.status, secs);
      log_.Log(Logger::Level::kDebug, "http.request",
               {{"method", req.method},
                {"path", req.path},
                {"status", std::to_string(res.status)},
                {"ms", std::to_string(secs * 1000)}});
    };
    if (method == "GET") svr.Get(pattern, wrapped);
    if (method == "POST") svr.Post(pattern, wrapped);
    if (method == "PUT") svr.Put(pattern, wrapped);
    if (method == "DELETE") svr.Delete(pattern, wrapped);
  }

  ApiResult Handle(const httplib::Request& req, const std::vector<Role>& roles,
                   const Handler& handler) {
    auto caller = Authenticate(req);
    if (!caller.ok()) {
      bool unauth = caller.status().code() == StatusCode::kPermissionDenied;
      return {unauth ? 401 : HttpStatusFor(caller.status().code()),
              ErrorBody(unauth ? "unauthenticated" : ErrorCodeName(caller.status().code()),
                        caller.status().message())};
    }
    if (!roles.empty() && std::find(roles.begin(), roles.end(), caller->user.role) == roles.end()) {
      (void)db_.AppendAudit(AuditFor(*caller, "authz", req.method + " " + req.path,
                                     store::AuditDecision::kDeny,
                                     json{{"role", store::RoleName(caller->user.role)}}.dump()));
      return {403, ErrorBody("permission_denied",
                             "role '" + std::string(store::RoleName(caller->user.role)) +
                                 "' may not " + req.method + " " + req.path)};
    }
    auto r = handler(*caller, req);
    if (!r.ok()) {
      return {HttpStatusFor(r.status().code()),
              ErrorBody(ErrorCodeName(r.status().code()), r.status().message())};
    }
    return std::move(*r);
  }

  store::Store& db_;
  Logger& log_;
  const Clock& clock_;
  MasterKey& master_key_;
  ledger::EmbeddedLedger& ledger_;
  Metrics metrics_;
};

// Strict access to a JSON request body: unknown fields and wrong types are
// errors naming "body.<field>" and what was expected.
class Body {
 public:
  static StatusOr<Body> Parse(const httplib::Request& req, const std::set<std::string>& allowed) {
    json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return InvalidArgument("body: not valid JSON");
    if (!j.is_object()) return InvalidArgument("body: expected a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (!allowed.count(k)) return InvalidArgument("body." + k + ": unknown field");
    }
    return Body(std::move(j));
  }
  StatusOr<std::string> String(const std::string& k, std::optional<std::string> dflt = {}) const {
    auto it = j_.find(k);
    if (it == j_.end()) {
      if (dflt) return *dflt;
      return InvalidArgument("body." + k + ": required");
    }
    if (!it->is_string()) return InvalidArgument("body." + k + ": expected a string");
    return it->get<std::string>();
  }
  StatusOr<int64_t> Int(const std::string& k, int64_t min, int64_t max,
                        std::optional<int64_t> dflt = {}) const {
    auto it = j_.find(k);
    if (it == j_.end()) {
      if (dflt) return *dflt;
      return InvalidArgument("body." + k + ": required");
    }
    if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
      return InvalidArgument("body." + k + ": expected an integer in " + std::to_string(min) +
                             ".." + std::to_string(max));
    }
    return it->get<int64_t>();
  }

 private:
  explicit Body(json j) : j_(std::move(j)) {}
  json j_;
};

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

}  // namespace

Status Serve(const ServeOptions& options, const Clock& clock) {
  ASSIGN_OR_RETURN(PlaneConfig config, LoadConfig(options.data_dir));
  if (!options.listen_override.empty()) config.listen = options.listen_override;
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseListen(config.listen, &host, &port));
  Logger log(config.log_format == "json", Logger::ParseLevel(config.log_level));
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey signing_key,
                   LoadSigningKey(config.Path(config.signing_key_file)));
  ASSIGN_OR_RETURN(std::unique_ptr<MasterKey> master_key,
                   LoadFileMasterKey(config.Path(config.master_key_file)));
  store::SqliteStoreOptions so;
  so.path = config.Path(config.database_path);
  ASSIGN_OR_RETURN(std::unique_ptr<store::SqliteStore> db, store::SqliteStore::Open(so));

  std::string cert = config.Path(config.tls_cert_file);
  std::string key = config.Path(config.tls_key_file);
  std::string tls_error;
  httplib::SSLServer svr([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1) {
      tls_error = "TLS certificate or key unusable: " + cert + ", " + key;
      return false;
    }
    return true;
  });
  if (!svr.is_valid()) return InvalidArgument(tls_error.empty() ? "TLS setup failed" : tls_error);
  const auto threads = static_cast<size_t>(config.http_threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(static_cast<size_t>(config.max_body_bytes));
  svr.set_keep_alive_max_count(100000);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string code = res.status == 404   ? "not_found"
                       : res.status == 413 ? "payload_too_large"
                                           : "http_" + std::to_string(res.status);
    res.set_content(ErrorBody(code, "HTTP " + std::to_string(res.status)).dump(),
                    "application/json");
  });
  ledger::EmbeddedLedger ledger(*db, signing_key);
  Api api(*db, log, clock, *master_key, ledger);
  api.Register(svr);

  int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return {StatusCode::kUnavailable, "cannot listen on " + config.listen};
  log.Info("plane.start", {{"listen", host + ":" + std::to_string(bound)},
                           {"master_key", master_key->backend()},
                           {"schema", std::to_string(store::SqliteStore::LatestSchemaVersion())}});
  if (options.on_listening) options.on_listening(bound);

  std::atomic<bool> done{false};
  std::thread stopper([&] {
    while (!done && !(options.stop != nullptr && options.stop->load())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    svr.stop();  // graceful: in-flight requests finish, then listen returns
  });
  bool ok = svr.listen_after_bind();
  done = true;
  stopper.join();
  // Seal the audit log's tail with a signed checkpoint before exiting.
  auto head = db->GetAuditHead();
  if (head.ok() && head->seq > 0) {
    auto cp = store::SignAuditCheckpoint(signing_key, *head, clock.NowUnix());
    if (cp.ok()) (void)db->AddCheckpoint(*cp);
  }
  log.Info("plane.stop", {{"clean", ok ? "true" : "false"}});
  return Status::Ok();
}

}  // namespace cce::plane

// The plane's routes: each is authenticate (in admit, before any body byte
// is read) -> decode -> one service call -> encode. No domain rule lives
// here; if a route grows an `if` about jobs, datasets or keys, it belongs in
// a service.
#include "plane/routes.h"

#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <set>

#include "image/image.h"
#include "plane/console.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using store::Role;

constexpr std::string_view kJsonType = "application/json";

http::Response JsonResponse(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.content_type = std::string(kJsonType);
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

template <typename T>
http::Response Encode(int status, const T& value) {
  return JsonResponse(status, api::ToJson(value));
}

template <typename T>
StatusOr<T> DecodeBody(const http::Request& req) {
  return api::Parse<T>(req.body, api::Decode::kStrict, "body");
}

std::string RequestLine(const http::Request& req) {
  return req.method + " " + req.path;
}

// A query parameter as an integer in [min, max] (dflt when absent).
StatusOr<int64_t> IntParam(const http::Request& req, const std::string& name, int64_t dflt,
                           int64_t min, int64_t max) {
  auto v = req.QueryValue(name);
  if (!v) return dflt;
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < min || out > max) {
    return InvalidArgument("query parameter '" + name + "': expected an integer in " +
                           std::to_string(min) + ".." + std::to_string(max));
  }
  return out;
}

// A released output as a streamed response body: the service's reader
// yields authenticated segments (the last only once the whole digest
// matched); they are copied into the server's piece buffer, so no more than
// a segment and a piece of plaintext exist per download.
class OutputBody : public http::BodySource {
 public:
  explicit OutputBody(Jobs::Output out) : out_(std::move(out)) {}
  uint64_t size() const override { return out_.size; }
  StatusOr<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = 0;
    while (n < buf.size()) {
      if (left_.empty()) {
        ASSIGN_OR_RETURN(left_, out_.reader->Next());
        if (left_.empty()) break;
      }
      const size_t k = std::min(left_.size(), buf.size() - n);
      std::copy_n(left_.begin(), k, buf.begin() + static_cast<std::ptrdiff_t>(n));
      left_ = left_.subspan(k);
      n += k;
    }
    return n;
  }

 private:
  Jobs::Output out_;
  crypto::ByteSpan left_;  // the rest of the reader's current segment
};

// A blob of a job's image as a streamed response body, read from the blob
// store's file a piece at a time.
class BlobBody : public http::BodySource {
 public:
  explicit BlobBody(AgentReports::Blob blob) : blob_(std::move(blob)) {}
  uint64_t size() const override { return blob_.size; }
  StatusOr<size_t> Read(std::span<uint8_t> buf) override {
    for (;;) {
      const ssize_t n = ::read(blob_.fd.get(), buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoStatus("blob " + blob_.digest, errno);
    }
  }

 private:
  AgentReports::Blob blob_;
};

// One file of a held output for a reviewer, streamed from the sealed bundle.
class ReviewFileBody : public http::BodySource {
 public:
  explicit ReviewFileBody(Reviews::File file) : file_(std::move(file)) {}
  uint64_t size() const override { return file_.size; }
  StatusOr<size_t> Read(std::span<uint8_t> buf) override { return file_.stream->Read(buf); }

 private:
  Reviews::File file_;
};

// One file of a dataset sample, read from the plane's copy a piece at a time.
class SampleFileBody : public http::BodySource {
 public:
  explicit SampleFileBody(Samples::File file) : file_(std::move(file)) {}
  uint64_t size() const override { return file_.size; }
  StatusOr<size_t> Read(std::span<uint8_t> buf) override {
    for (;;) {
      const ssize_t n = ::read(file_.fd.get(), buf.data(), buf.size());
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoStatus("sample file " + file_.path, errno);
    }
  }

 private:
  Samples::File file_;
};

// A sample file's Content-Type, by its extension only (the bytes are the
// provider's; nosniff keeps a browser from guessing otherwise).
std::string SampleContentType(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    if (path.size() < ext.size()) return false;
    const std::string_view tail = path.substr(path.size() - ext.size());
    return std::equal(tail.begin(), tail.end(), ext.begin(), [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == b;
    });
  };
  if (ends(".csv")) return "text/csv; charset=utf-8";
  if (ends(".jsonl") || ends(".ndjson")) return "application/x-ndjson";
  if (ends(".json")) return "application/json";
  if (ends(".txt") || ends(".md")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// A path captured from the URL, percent-decoded ('+' stays '+'); nullopt
// for a malformed escape.
std::optional<std::string> DecodePathCapture(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = nibble(s[i + 1]);
    const int lo = nibble(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// A safe filename for Content-Disposition: the path's last part, with only
// [A-Za-z0-9._-] kept (never a quote or a line break in a header).
std::string AttachmentName(std::string_view path) {
  const size_t slash = path.rfind('/');
  std::string name;
  for (char c : path.substr(slash == std::string_view::npos ? 0 : slash + 1)) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') name += c;
  }
  if (name.empty() || name.find_first_not_of('.') == std::string::npos) name = "file";
  return name.substr(0, 128);
}

// The agent's output upload as the server's sink: each piece goes straight
// into the service's OutputUpload (sealed a segment at a time).
class OutputSink : public http::UploadSink {
 public:
  explicit OutputSink(std::unique_ptr<AgentReports::OutputUpload> upload)
      : upload_(std::move(upload)) {}
  Status Write(std::span<const uint8_t> piece) override { return upload_->Write(piece); }
  std::unique_ptr<AgentReports::OutputUpload> Take() { return std::move(upload_); }

 private:
  std::unique_ptr<AgentReports::OutputUpload> upload_;
};

std::optional<uint64_t> ContentLength(const http::Request& req) {
  auto v = req.HeaderValue("Content-Length");
  if (!v) return std::nullopt;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return n;
}

const std::string kJobIdPattern = "(job-[0-9a-f]{16})";

// The one place that says what an Explore session's SDK token may do
// (Caller::explore_session; docs/explore/sessions.md): what the SDK in a
// notebook needs -- list datasets and rentals, read samples, submit jobs
// and script jobs, read, cancel and download its own jobs, list the script
// bases -- and nothing else. Checked in admit for every /api/v1 route.
bool OpenToSessionTokens(const std::string& method, const std::string& pattern) {
  static const std::set<std::pair<std::string, std::string>> kOpen = {
      {"GET", "/api/v1/datasets"},
      {"GET", "/api/v1/datasets/([a-z0-9-]+)"},
      {"GET", "/api/v1/rentals"},
      {"POST", "/api/v1/jobs"},
      {"POST", "/api/v1/jobs/script"},
      {"GET", "/api/v1/jobs"},
      {"GET", "/api/v1/jobs/" + kJobIdPattern},
      {"GET", "/api/v1/jobs/" + kJobIdPattern + "/output"},
      {"POST", "/api/v1/jobs/" + kJobIdPattern + "/cancel"},
      {"GET", "/api/v1/explore/bases"},
  };
  if (kOpen.count({method, pattern}) != 0) return true;
  // Reading a dataset's sample (its listing and files; Samples checks the rental).
  return method == "GET" && pattern.rfind("/api/v1/datasets/", 0) == 0 &&
         pattern.find("/sample") != std::string::npos;
}

using UserHandler = std::function<StatusOr<http::Response>(const Caller&, http::Request&)>;
using KbsHandler = std::function<StatusOr<http::Response>(http::Request&)>;

struct RouteSpec {
  std::string method;
  std::string pattern;
  http::BodyPolicy body = http::BodyPolicy::kNone;
  uint64_t max_body_bytes = 0;
  std::string body_dir;
};

class RouteBuilder {
 public:
  explicit RouteBuilder(Services& s) : s_(s) {}

  // An /api/v1 route: the bearer token is checked, and the role, before the
  // body is read; refusals are audited by the Users service.
  // `before_body`, if set, is a further check on the caller and headers
  // that runs in admit too (e.g. a quota), before any body byte is read.
  void User(RouteSpec spec, std::vector<Role> roles, UserHandler handler,
            std::function<Status(const Caller&, const http::Request&)> before_body = nullptr) {
    http::Route r = Base(std::move(spec));
    // The lambdas outlive this builder: they hold the services, never `this`.
    Services* s = &s_;
    const bool session_tokens = OpenToSessionTokens(r.method, r.pattern);
    r.admit = [s, roles, before_body,
               session_tokens](const http::Request& req) -> std::optional<http::Response> {
      const std::string line = RequestLine(req);
      auto caller = s->users.Authenticate(req.HeaderValue("Authorization").value_or(""),
                                          req.remote_addr, line);
      if (!caller.ok()) return ErrorResponse(caller.status());
      if (!caller->explore_session.empty() && !session_tokens) {
        return ErrorResponse(s->audit_log.Deny(
            caller->actor(), "authz", line,
            PermissionDenied("an Explore session token cannot " + line +
                             ": it may only read datasets, rentals and samples and submit and "
                             "read its own jobs"),
            {{"reason", "explore session token"}, {"session", caller->explore_session}}));
      }
      Status allowed = s->users.Authorize(*caller, roles, line);
      if (!allowed.ok()) return ErrorResponse(allowed);
      if (before_body) {
        Status ok = before_body(*caller, req);
        if (!ok.ok()) return ErrorResponse(ok);
      }
      req.context = std::move(*caller);
      return std::nullopt;
    };
    r.handle = [handler](http::Request& req) {
      const auto* caller = std::any_cast<Caller>(&req.context);
      if (caller == nullptr) return ErrorResponse(Internal("route ran without its caller"));
      auto res = handler(*caller, req);
      return res.ok() ? std::move(*res) : ErrorResponse(res.status());
    };
    routes_.push_back(std::move(r));
  }

  // A /kbs/v0 route: no bearer user (the handler checks the credential or
  // session). An address over its failure limit is refused before the
  // handler runs, and only the first refusal of a window is audited.
  // Also the agent's /api/v1/agent routes (the same session, the same
  // per-address failure budget); `open_sink` for a kToSink body.
  void Kbs(RouteSpec spec, KbsHandler handler,
           std::function<StatusOr<std::shared_ptr<http::UploadSink>>(http::Request&)> open_sink =
               nullptr) {
    http::Route r = Base(std::move(spec));
    r.open_sink = std::move(open_sink);
    Services* s = &s_;
    r.admit = [s](const http::Request& req) -> std::optional<http::Response> {
      auto& limiter = s->key_broker.limiter();
      switch (limiter.Check(req.remote_addr, s->clock().NowUnix())) {
        case FailureLimiter::Admission::kAdmit: return std::nullopt;
        case FailureLimiter::Admission::kFirstRefusal:
          (void)s->audit_log.Append(s->audit_log.Record("remote:" + req.remote_addr,
                                                        "kbs.rate_limit", RequestLine(req),
                                                        store::AuditDecision::kDeny));
          break;
        case FailureLimiter::Admission::kRefusal: break;
      }
      return ErrorResponse(
          ResourceExhausted("too many failed key broker requests from this address"));
    };
    // The common case (an address under its failure budget) is decided on
    // the I/O thread; a refusal, which may be audited, on the worker pool.
    r.admit_quick = [s](const http::Request& req) {
      return s->key_broker.limiter().Admits(req.remote_addr, s->clock().NowUnix());
    };
    r.handle = [s, handler](http::Request& req) {
      auto res = handler(req);
      if (res.ok()) return std::move(*res);
      s->key_broker.limiter().RecordFailure(req.remote_addr, s->clock().NowUnix());
      return ErrorResponse(res.status());
    };
    routes_.push_back(std::move(r));
  }

  // A reverse proxy route (src/http Route::proxy): `admit` authenticates and
  // may answer itself; `proxy` names the upstream.
  void Proxy(RouteSpec spec,
             std::function<std::optional<http::Response>(const http::Request&)> admit,
             std::function<StatusOr<http::ProxyTarget>(const http::Request&)> proxy) {
    http::Route r = Base(std::move(spec));
    r.admit = std::move(admit);
    r.proxy = std::move(proxy);
    routes_.push_back(std::move(r));
  }

  void Open(RouteSpec spec, std::function<http::Response(http::Request&)> handler) {
    http::Route r = Base(std::move(spec));
    r.handle = std::move(handler);
    routes_.push_back(std::move(r));
  }

  std::vector<http::Route> Take() { return std::move(routes_); }

 private:
  static http::Route Base(RouteSpec spec) {
    http::Route r;
    r.method = std::move(spec.method);
    r.pattern = std::move(spec.pattern);
    r.body = spec.body;
    r.max_body_bytes = spec.max_body_bytes;
    r.body_dir = std::move(spec.body_dir);
    return r;
  }
  Services& s_;
  std::vector<http::Route> routes_;
};

const std::vector<Role> kAnyRole = {};
// The largest request body proxied to a session's Jupyter server (an
// uploaded notebook or file).
constexpr uint64_t kExploreMaxProxiedBodyBytes = uint64_t{100} << 20;
constexpr auto kBuffered = http::BodyPolicy::kBuffered;
const std::string kJobId = "(job-[0-9a-f]{16})";

}  // namespace

http::Response ErrorResponse(const Status& s) {
  int status = 500;
  std::string code(StatusCodeName(s.code()));
  for (char& c : code) c = c == ' ' ? '_' : c;
  switch (s.code()) {
    case StatusCode::kOk: status = 200; break;
    case StatusCode::kInvalidArgument: status = 400; break;
    case StatusCode::kUnauthenticated: status = 401; break;
    case StatusCode::kPermissionDenied: status = 403; break;
    case StatusCode::kNotFound: status = 404; break;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: status = 409; break;
    case StatusCode::kResourceExhausted:
      status = 429;
      code = "rate_limited";
      break;
    case StatusCode::kUnavailable: status = 503; break;
    case StatusCode::kDataLoss:
    case StatusCode::kInternal:
    case StatusCode::kIo: status = 500; break;
  }
  http::Response r = JsonResponse(status, {{"error", {{"code", code}, {"message", s.message()}}}});
  if (status == 429) {
    r.headers.push_back({"Retry-After", std::to_string(FailureLimiter::kWindowSeconds)});
  }
  return r;
}

void Metrics::Observe(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  ++requests_[std::string(route) + "\",status=\"" + std::to_string(status)];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++buckets_[i];
  }
  ++count_;
  sum_ += seconds;
}

std::string Metrics::Render(const http::ServerStats& t) {
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
    out += "cce_http_request_duration_seconds_bucket{le=\"" + std::to_string(kBuckets[i]) + "\"} " +
           std::to_string(buckets_[i]) + "\n";
  }
  out += "cce_http_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += "cce_http_request_duration_seconds_sum " + std::to_string(sum_) + "\n";
  out += "cce_http_request_duration_seconds_count " + std::to_string(count_) + "\n";
  auto gauge = [&out](const char* name, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
  };
  gauge("cce_http_connections_open", "Open connections.", t.connections_open);
  gauge("cce_http_connections_accepted_total", "Accepted connections.", t.connections_accepted);
  gauge("cce_http_connections_refused_total", "Connections over a cap.", t.connections_refused);
  gauge("cce_http_timeouts_total", "Connections closed by a deadline.", t.timeouts);
  gauge("cce_http_limit_refusals_total", "Requests refused by a transport limit.",
        t.limit_refusals);
  return out;
}

std::vector<http::Route> PlaneRoutes(Services& s, Metrics& metrics,
                                     std::function<http::ServerStats()> server_stats,
                                     uint64_t max_body_bytes) {
  RouteBuilder b(s);
  const RouteSpec json_body_spec{"", "", kBuffered, max_body_bytes, ""};
  auto with = [&](std::string method, std::string pattern, bool body = false) {
    RouteSpec spec = body ? json_body_spec : RouteSpec{};
    spec.method = std::move(method);
    spec.pattern = std::move(pattern);
    return spec;
  };

  b.Open(with("GET", "/healthz"), [](http::Request&) {
    return JsonResponse(200, {{"status", "ok"}});
  });
  b.User(with("GET", "/metrics"), {Role::kOperator},
         [&metrics, server_stats](const Caller&, http::Request&) -> StatusOr<http::Response> {
           http::Response r;
           r.content_type = "text/plain; version=0.0.4";
           r.body = metrics.Render(server_stats ? server_stats() : http::ServerStats{});
           return r;
         });

  // ---- Users
  b.User(with("GET", "/api/v1/whoami"), kAnyRole,
         [](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           return Encode(
               200, api::User{c.user.id, c.user.name, std::string(store::RoleName(c.user.role)),
                              c.user.created_at, c.user.disabled});
         });
  b.User(with("GET", "/api/v1/users"), {Role::kOperator},
         [&s](const Caller&, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto users, s.users.List());
           return Encode(200, users);
         });
  b.User(with("POST", "/api/v1/users", true), {Role::kOperator},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::CreateUserRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.users.Create(c, in));
           return Encode(201, out);
         });

  // ---- Catalog and rentals
  b.User(with("POST", "/api/v1/datasets", true), {Role::kProvider},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::RegisterDatasetRequest>(req));
           OPENSSL_cleanse(req.body.data(), req.body.size());  // it held the key
           ASSIGN_OR_RETURN(auto out, s.catalog.Register(c, std::move(in)));
           return Encode(201, out);
         });
  b.User(with("GET", "/api/v1/datasets"), kAnyRole,
         [&s](const Caller&, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.catalog.List());
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/datasets/([a-z0-9-]+)"), kAnyRole,
         [&s](const Caller&, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.catalog.Get(req.captures[0]));
           return Encode(200, out);
         });
  // ---- Dataset samples (docs/explore/samples.md): the owner publishes a
  // tar (streamed to an anonymous file, ownership and announced length
  // checked before the body); the owner and current renters read.
  b.User(
      RouteSpec{"PUT", "/api/v1/datasets/([a-z0-9-]+)/sample", http::BodyPolicy::kToFile,
                s.samples.max_upload_bytes(), s.samples.upload_dir()},
      kAnyRole,
      [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
        auto out = s.samples.Publish(c, req.captures[0], req.body_fd);
        if (out.status().code() == StatusCode::kResourceExhausted) {  // too many files or bytes
          return JsonResponse(
              413, {{"error", {{"code", "payload_too_large"}, {"message", out.status().message()}}}});
        }
        if (!out.ok()) return out.status();
        return Encode(201, *out);
      },
      [&s](const Caller& c, const http::Request& req) -> Status {
        const auto type = req.HeaderValue("Content-Type").value_or("");
        if (type != "application/x-tar") {
          return InvalidArgument("Content-Type: expected application/x-tar (an uncompressed tar)");
        }
        return s.samples.AdmitPublish(c, req.captures.at(0), ContentLength(req));
      });
  b.User(with("GET", "/api/v1/datasets/([a-z0-9-]+)/sample"), kAnyRole,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.samples.Get(c, req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/datasets/([a-z0-9-]+)/sample/files/(.+)"), kAnyRole,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           auto path = DecodePathCapture(req.captures[1]);
           if (!path) return InvalidArgument("file path: malformed percent-encoding");
           ASSIGN_OR_RETURN(auto file, s.samples.OpenFile(c, req.captures[0], *path));
           http::Response r;
           r.content_type = SampleContentType(file.path);
           r.headers.push_back({"X-Content-Type-Options", "nosniff"});
           r.headers.push_back({"Content-Security-Policy", "sandbox"});
           r.headers.push_back({"X-Sample-Version", std::to_string(file.version)});
           r.stream = std::make_shared<SampleFileBody>(std::move(file));
           return r;
         });
  b.User(with("POST", "/api/v1/rentals", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::RentRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.rentals.Rent(c, in));
           return Encode(201, out);
         });
  b.User(with("GET", "/api/v1/rentals"), kAnyRole,
         [&s](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.rentals.List(c));
           return Encode(200, out);
         });

  // ---- Ledger and wallets (docs/ledger.md). The wallet routes are not open
  // to Explore session tokens (OpenToSessionTokens): a notebook must not
  // link an address to its owner.
  b.User(with("GET", "/api/v1/ledger"), kAnyRole,
         [&s](const Caller&, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.ledger.Info());
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/ledger/datasets/([a-z0-9-]+)"), kAnyRole,
         [&s](const Caller&, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.ledger.Dataset(req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("POST", "/api/v1/wallet/challenge", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::WalletChallengeRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.wallets.Challenge(c, in));
           return Encode(200, out);
         });
  b.User(with("POST", "/api/v1/wallet/link", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::WalletLinkRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.wallets.Link(c, in));
           return Encode(201, out);
         });
  b.User(with("GET", "/api/v1/wallet"), kAnyRole,
         [&s](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.wallets.List(c));
           return Encode(200, out);
         });

  // ---- Images
  const std::vector<Role> pushers = {Role::kConsumer, Role::kOperator};
  b.User(with("GET", "/api/v1/images/blobs/([^/]+)"), pushers,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.images.BlobStatus(c, req.captures[0]));
           return Encode(200, out);
         });
  // A layer may be large: streamed to an anonymous file under the blob
  // store's tmp/, chunked or with a length, capped at the image limit; an
  // announced length over the caller's quota is refused before the body.
  b.User(
      RouteSpec{"PUT", "/api/v1/images/blobs/([^/]+)", http::BodyPolicy::kToFile,
                image::kDefaultMaxImageBytes, s.images.blob_upload_dir()},
      pushers,
      [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
        ASSIGN_OR_RETURN(auto out, s.images.PutBlob(c, req.captures[0], req.body_fd));
        return Encode(201, out);
      },
      [&s](const Caller& c, const http::Request& req) -> Status {
        std::optional<uint64_t> length;
        if (auto v = req.HeaderValue("Content-Length")) {
          uint64_t n = 0;
          auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
          if (ec == std::errc() && p == v->data() + v->size()) length = n;
        }
        return s.images.AdmitUpload(c, length);
      });
  b.User(with("PUT", "/api/v1/images/(.+)/tags/([^/]+)", true), pushers,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.images.Tag(c, req.captures[0], req.captures[1], req.body));
           return Encode(201, out);
         });
  b.User(with("DELETE", "/api/v1/images/(.+)/tags/([^/]+)"), pushers,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.images.Untag(c, req.captures[0], req.captures[1]));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/images"), kAnyRole,
         [&s](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.images.List(c));
           return Encode(200, out);
         });

  // ---- Jobs
  const std::vector<Role> job_readers = {Role::kConsumer, Role::kReviewer, Role::kOperator};
  b.User(with("POST", "/api/v1/jobs", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(
               auto out,
               s.jobs.Submit(c, req.body, req.HeaderValue("Idempotency-Key").value_or(""),
                             req.HeaderValue(api::kJobSpecNameHeader).value_or("")));
           return Encode(out.created ? 201 : 200, out.job);
         });
  // Script jobs (docs/explore/script-jobs.md): the body carries the script
  // (base64, at most ScriptJobs::kMaxScriptBytes), so its own cap.
  b.User(RouteSpec{"POST", "/api/v1/jobs/script", kBuffered,
                   std::max<uint64_t>(max_body_bytes, ScriptJobs::kMaxRequestBytes), ""},
         {Role::kConsumer}, [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::ScriptJobRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.script_jobs.Submit(
                                          c, in, req.HeaderValue("Idempotency-Key").value_or("")));
           return Encode(out.created ? 201 : 200, out.job);
         });
  b.User(with("GET", "/api/v1/explore/bases"), kAnyRole,
         [&s](const Caller&, http::Request&) -> StatusOr<http::Response> {
           return Encode(200, s.script_jobs.Bases());
         });
  b.User(with("GET", "/api/v1/jobs"), job_readers,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           Jobs::ListRequest in;
           in.state = req.QueryValue("state");
           ASSIGN_OR_RETURN(in.limit, IntParam(req, "limit", 1000, 1, 10000));
           ASSIGN_OR_RETURN(in.offset, IntParam(req, "offset", 0, 0, INT64_MAX / 2));
           ASSIGN_OR_RETURN(auto out, s.jobs.List(c, in));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/jobs/" + kJobId), job_readers,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.jobs.Get(c, req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/jobs/" + kJobId + "/output"), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           auto out = s.jobs.DownloadOutput(c, req.captures[0]);
           if (out.status().code() == StatusCode::kUnavailable) {  // over the download cap
             http::Response busy = ErrorResponse(out.status());
             busy.headers.push_back({"Retry-After", "5"});
             return busy;
           }
           if (!out.ok()) return out.status();
           http::Response r;
           r.content_type = "application/octet-stream";
           r.headers.push_back({"X-Output-Digest", out->digest});
           r.stream = std::make_shared<OutputBody>(std::move(*out));
           return r;
         });
  b.User(with("POST", "/api/v1/jobs/" + kJobId + "/cancel", true),
         {Role::kConsumer, Role::kOperator},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.jobs.Cancel(c, req.captures[0]));
           return Encode(200, out);
         });

  // ---- Explore sessions (docs/explore/sessions.md)
  const std::string kSessionId = "(xs-[0-9a-f]{16})";
  b.User(with("POST", "/api/v1/explore/sessions", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           api::StartExploreRequest in;
           if (!req.body.empty()) {
             ASSIGN_OR_RETURN(in, DecodeBody<api::StartExploreRequest>(req));
           }
           ASSIGN_OR_RETURN(auto out, s.explore.Start(c, in));
           return Encode(201, out);
         });
  b.User(with("GET", "/api/v1/explore/sessions"), kAnyRole,
         [&s](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.explore.List(c));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/explore/sessions/" + kSessionId), kAnyRole,
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.explore.Get(c, req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("DELETE", "/api/v1/explore/sessions/" + kSessionId),
         {Role::kConsumer, Role::kOperator},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.explore.Stop(c, req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("POST", "/api/v1/explore/sessions/" + kSessionId + "/login", true), {Role::kConsumer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.explore.NewLoginUrl(c, req.captures[0]));
           return Encode(200, out);
         });
  // The browser's way in: a one-time code for a cookie scoped to the session.
  b.Open(with("GET", "/explore/" + kSessionId + "/login"), [&s](http::Request& req) {
    auto in =
        s.explore.Login(req.captures[0], req.QueryValue("code").value_or(""), req.remote_addr);
    if (!in.ok()) return ErrorResponse(in.status());
    http::Response r;
    r.status = 303;
    r.content_type = "text/plain; charset=utf-8";
    r.headers.push_back({"Set-Cookie", in->set_cookie});
    r.headers.push_back({"Location", in->location});
    r.headers.push_back({"Cache-Control", "no-store"});
    r.headers.push_back({"Referrer-Policy", "no-referrer"});
    return r;
  });
  // Everything else under /explore/<id>/ goes to the session's Jupyter
  // server, any method, WebSockets included: admit checks the owner's
  // cookie (or API token) and that the session runs, before any body byte;
  // the plane's cookie and the Authorization field never go upstream, the
  // Jupyter token is added instead.
  b.Proxy(
      RouteSpec{"*", "/explore/" + kSessionId + "/.*", http::BodyPolicy::kNone,
                kExploreMaxProxiedBodyBytes, ""},
      [&s](const http::Request& req) -> std::optional<http::Response> {
        auto target =
            s.explore.Target(req.captures[0], req.HeaderValue("Cookie").value_or(""),
                             req.HeaderValue("Authorization").value_or(""), req.remote_addr);
        if (!target.ok()) {
          if (target.status().code() == StatusCode::kUnauthenticated && req.method == "GET") {
            // A browser without its cookie: say how to log in, as a page.
            http::Response r = ErrorResponse(target.status());
            r.content_type = "text/plain; charset=utf-8";
            r.body = target.status().message() + "\n";
            return r;
          }
          return ErrorResponse(target.status());
        }
        http::ProxyTarget t;
        t.unix_socket = target->upstream.unix_socket;
        t.host = target->upstream.host;
        t.port = target->upstream.port;
        t.set_headers.push_back({"Authorization", std::move(target->jupyter_authorization)});
        t.remove_headers = {"Authorization"};
        t.remove_cookies = {std::string(ExploreSessions::kCookieName)};
        req.context = std::move(t);
        return std::nullopt;
      },
      [](const http::Request& req) -> StatusOr<http::ProxyTarget> {
        const auto* t = std::any_cast<http::ProxyTarget>(&req.context);
        if (t == nullptr) return Internal("explore proxy ran without its target");
        return *t;
      });

  // ---- Review of held outputs (docs/review.md)
  b.User(with("GET", "/api/v1/reviews"), {Role::kReviewer, Role::kOperator},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           Reviews::ListRequest in;
           const std::string state = req.QueryValue("state").value_or("HELD");
           if (state != "HELD" && state != "decided") {
             return InvalidArgument("query parameter 'state': expected HELD or decided");
           }
           in.decided = state == "decided";
           ASSIGN_OR_RETURN(in.limit, IntParam(req, "limit", 100, 1, 1000));
           ASSIGN_OR_RETURN(auto out, s.reviews.List(c, in));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/reviews/" + kJobId), {Role::kReviewer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.reviews.Get(c, req.captures[0]));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/reviews/" + kJobId + "/files/(.+)"), {Role::kReviewer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           auto path = DecodePathCapture(req.captures[1]);
           if (!path) return InvalidArgument("file path: malformed percent-encoding");
           auto file = s.reviews.OpenFile(c, req.captures[0], *path);
           if (file.status().code() == StatusCode::kUnavailable) {
             http::Response busy = ErrorResponse(file.status());
             busy.headers.push_back({"Retry-After", "5"});
             return busy;
           }
           if (!file.ok()) return file.status();
           http::Response r;
           r.content_type = file->content_type;
           // Hostile bytes shown in a browser: never sniffed into HTML, never
           // run as script, never given the plane's origin.
           r.headers.push_back({"X-Content-Type-Options", "nosniff"});
           r.headers.push_back({"Content-Security-Policy", "sandbox"});
           r.headers.push_back({"Cache-Control", "no-store"});
           if (file->attachment) {
             r.headers.push_back({"Content-Disposition",
                                  "attachment; filename=\"" + AttachmentName(file->path) + "\""});
           }
           r.stream = std::make_shared<ReviewFileBody>(std::move(*file));
           return r;
         });
  b.User(with("POST", "/api/v1/reviews/" + kJobId + "/approve", true), {Role::kReviewer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::ReviewDecisionRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.reviews.Approve(c, req.captures[0], in));
           return Encode(200, out);
         });
  b.User(with("POST", "/api/v1/reviews/" + kJobId + "/reject", true), {Role::kReviewer},
         [&s](const Caller& c, http::Request& req) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto in, DecodeBody<api::ReviewDecisionRequest>(req));
           ASSIGN_OR_RETURN(auto out, s.reviews.Reject(c, req.captures[0], in));
           return Encode(200, out);
         });

  // ---- Audit
  b.User(with("GET", "/api/v1/audit"), {Role::kOperator, Role::kReviewer},
         [&s](const Caller&, http::Request& req) -> StatusOr<http::Response> {
           store::AuditFilter f;
           ASSIGN_OR_RETURN(f.after_seq, IntParam(req, "after", 0, 0, INT64_MAX));
           ASSIGN_OR_RETURN(f.limit, IntParam(req, "limit", 1000, 1, 10000));
           if (auto job = req.QueryValue("job")) {
             if (job->rfind("job-", 0) != 0) {
               return InvalidArgument("query parameter 'job': expected a job id (job-...)");
             }
             f.object = "job:" + *job;
           }
           ASSIGN_OR_RETURN(auto out, s.audit.List(f));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/audit/verify"), {Role::kOperator},
         [&s](const Caller& c, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.audit.Verify(c));
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/audit/checkpoints"), {Role::kOperator, Role::kReviewer},
         [&s](const Caller&, http::Request&) -> StatusOr<http::Response> {
           ASSIGN_OR_RETURN(auto out, s.audit.Checkpoints());
           return Encode(200, out);
         });
  b.User(with("GET", "/api/v1/audit/rentals"), {Role::kOperator},
         [&s](const Caller&, http::Request& req) -> StatusOr<http::Response> {
           store::RentalFilter f;
           ASSIGN_OR_RETURN(f.after_seq, IntParam(req, "after", 0, 0, INT64_MAX));
           ASSIGN_OR_RETURN(f.limit, IntParam(req, "limit", 1000, 1, 10000));
           ASSIGN_OR_RETURN(auto out, s.audit.RentalChain(f));
           return Encode(200, out);
         });

  // ---- Key broker
  b.Kbs(with("POST", "/kbs/v0/auth", true), [&s](http::Request& req) -> StatusOr<http::Response> {
    ASSIGN_OR_RETURN(auto in, DecodeBody<api::KbsAuthRequest>(req));
    ASSIGN_OR_RETURN(auto out, s.key_broker.Auth(req.remote_addr, in));
    return Encode(200, out);
  });
  b.Kbs(with("POST", "/kbs/v0/attest", true), [&s](http::Request& req) -> StatusOr<http::Response> {
    ASSIGN_OR_RETURN(auto in, DecodeBody<api::KbsAttestRequest>(req));
    ASSIGN_OR_RETURN(auto out, s.key_broker.Attest(req.remote_addr, in));
    return Encode(200, out);
  });
  b.Kbs(with("GET", "/kbs/v0/resource/([a-z0-9][a-z0-9._-]*)/key"),
        [&s](http::Request& req) -> StatusOr<http::Response> {
          ASSIGN_OR_RETURN(
              std::string jwe,
              s.key_broker.ReleaseKey(
                  req.remote_addr, req.HeaderValue("Authorization").value_or(""), req.captures[0]));
          http::Response r;
          r.content_type = "application/jose";
          r.body = std::move(jwe);
          return r;
        });

  // ---- The job's agent (session from /kbs/v0/attest; docs/attestation.md)
  auto authz = [](const http::Request& req) {
    return req.HeaderValue("Authorization").value_or("");
  };
  b.Kbs(with("POST", "/api/v1/agent/report", true),
        [&s, authz](http::Request& req) -> StatusOr<http::Response> {
          ASSIGN_OR_RETURN(auto in, DecodeBody<api::AgentReportRequest>(req));
          ASSIGN_OR_RETURN(auto out, s.agent.Report(req.remote_addr, authz(req), in));
          return Encode(200, out);
        });
  b.Kbs(with("GET", "/api/v1/agent/job"),
        [&s, authz](http::Request& req) -> StatusOr<http::Response> {
          ASSIGN_OR_RETURN(auto out, s.agent.Job(req.remote_addr, authz(req)));
          return Encode(200, out);
        });
  b.Kbs(with("GET", "/api/v1/agent/image/manifest"),
        [&s, authz](http::Request& req) -> StatusOr<http::Response> {
          ASSIGN_OR_RETURN(auto m, s.agent.ImageManifest(req.remote_addr, authz(req)));
          http::Response r;
          r.content_type = m.media_type.empty() ? std::string(image::kOciManifest) : m.media_type;
          r.headers.push_back({"Docker-Content-Digest", m.digest});
          r.body = std::move(m.bytes);
          return r;
        });
  b.Kbs(with("GET", "/api/v1/agent/image/blobs/([^/]+)"),
        [&s, authz](http::Request& req) -> StatusOr<http::Response> {
          ASSIGN_OR_RETURN(auto blob,
                           s.agent.ImageBlob(req.remote_addr, authz(req), req.captures[0]));
          http::Response r;
          r.content_type = "application/octet-stream";
          r.headers.push_back({"Docker-Content-Digest", blob.digest});
          r.stream = std::make_shared<BlobBody>(std::move(blob));
          return r;
        });
  // The bundle goes piece by piece into the sealed output store: the session,
  // headers and signature are checked (open_sink) before any body byte is
  // read, and the digest once the last one is in (handle).
  b.Kbs(
      RouteSpec{"PUT", "/api/v1/agent/output", http::BodyPolicy::kToSink,
                static_cast<uint64_t>(std::max<int64_t>(s.agent.max_output_bytes(), 1)), ""},
      [&s](http::Request& req) -> StatusOr<http::Response> {
        RETURN_IF_ERROR(req.body_status);
        auto* sink = dynamic_cast<OutputSink*>(req.body_sink.get());
        if (sink == nullptr) return Internal("agent output: no upload");
        ASSIGN_OR_RETURN(auto out, s.agent.FinishOutput(sink->Take()));
        return Encode(201, out);
      },
      [&s, authz](http::Request& req) -> StatusOr<std::shared_ptr<http::UploadSink>> {
        AgentReports::OutputHeaders h;
        h.digest = req.HeaderValue(api::kBundleDigestHeader).value_or("");
        h.signature = req.HeaderValue(api::kBundleSignatureHeader).value_or("");
        h.content_length = ContentLength(req);
        ASSIGN_OR_RETURN(auto upload, s.agent.BeginOutput(req.remote_addr, authz(req), h));
        return std::shared_ptr<http::UploadSink>(std::make_shared<OutputSink>(std::move(upload)));
      });
  std::vector<http::Route> routes = b.Take();
  AppendConsoleRoutes(routes);  // the web console's static files (console.h)
  return routes;
}

}  // namespace cce::plane

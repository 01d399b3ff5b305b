#include "agent/plane_agent_client.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>

#include "api/wire.h"
#include "base/fd.h"
#include "http/client.h"
#include "image/blob_store.h"

namespace cce::agent {
namespace {

using nlohmann::json;

// Read from the bundle file per call (the upload's piece, and the hash pass).
constexpr size_t kReadPiece = size_t{256} << 10;

// A transport failure keeps http::Client's words and code; an HTTP error
// carries the plane's message and a code for its status.
Status Refusal(const std::string& step, const StatusOr<http::ClientResponse>& r) {
  if (!r.ok()) return r.status().WithContext(step);
  json body = json::parse(r->body, nullptr, false);
  std::string message = "HTTP " + std::to_string(r->status);
  if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
    message = http::Printable(body["error"].value("message", message), 1024);
  }
  StatusCode code = StatusCode::kUnavailable;
  switch (r->status) {
    case 400: code = StatusCode::kInvalidArgument; break;
    case 401: code = StatusCode::kUnauthenticated; break;
    case 403: code = StatusCode::kPermissionDenied; break;
    case 404: code = StatusCode::kNotFound; break;
    case 409: code = StatusCode::kFailedPrecondition; break;
    case 413:
    case 429: code = StatusCode::kResourceExhausted; break;
    default: break;
  }
  return {code, step + ": " + message};
}

bool IsSha256Digest(std::string_view d) {
  return image::Digest::Parse(d).ok();
}

std::string DigestOf(crypto::Sha256Hasher& h) {
  return "sha256:" + crypto::ToHex(h.Finish());
}

StatusOr<size_t> PreadSome(int fd, std::span<uint8_t> buf, uint64_t offset) {
  for (;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoStatus("output bundle: read", errno);
  }
}

}  // namespace

struct PlaneAgentClient::Impl {
  http::Client http;
  std::string authorization;  // "Bearer <session>"
  std::string manifest_digest;

  StatusOr<http::ClientResponse> Send(http::ClientRequest req) {
    req.headers.push_back({"Authorization", authorization});
    return http.Send(req);
  }
};

PlaneAgentClient::PlaneAgentClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlaneAgentClient::PlaneAgentClient(PlaneAgentClient&&) noexcept = default;
PlaneAgentClient& PlaneAgentClient::operator=(PlaneAgentClient&&) noexcept = default;
PlaneAgentClient::~PlaneAgentClient() = default;

StatusOr<PlaneAgentClient> PlaneAgentClient::Create(const KbsEndpoint& plane, std::string session) {
  if (session.empty()) return InvalidArgument("plane agent client: no session");
  http::ClientOptions options;
  options.base_url = plane.plane_url;
  options.ca_file = plane.ca_file;
  options.unix_socket_path = plane.unix_socket;  // the plane's agent socket, if any
  options.connect_timeout = std::chrono::seconds(10);
  options.stall_timeout = std::chrono::seconds(60);
  ASSIGN_OR_RETURN(http::Client http, http::Client::Create(std::move(options)));
  auto impl = std::unique_ptr<Impl>(new Impl{std::move(http), "Bearer " + session, ""});
  return PlaneAgentClient(std::move(impl));
}

StatusOr<api::AgentJob> PlaneAgentClient::FetchJob() {
  http::ClientRequest req;
  req.target = "/api/v1/agent/job";
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 200) return Refusal("agent job", r);
  return api::Parse<api::AgentJob>(r->body, api::Decode::kLenient, "agent job");
}

Status PlaneAgentClient::ReportRunning() {
  http::ClientRequest req;
  req.method = "POST";
  req.target = "/api/v1/agent/report";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = api::ToJson(api::AgentReportRequest{"RUNNING", ""}).dump();
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 200) return Refusal("report RUNNING", r);
  return Status::Ok();
}

Status PlaneAgentClient::ReportFailed(std::string_view reason) {
  http::ClientRequest req;
  req.method = "POST";
  req.target = "/api/v1/agent/report";
  req.headers = {{"Content-Type", "application/json"}};
  // The plane keeps 512 bytes; sending more is pointless. Invalid UTF-8
  // would make the JSON encoder throw: replace it.
  req.body = api::ToJson(api::AgentReportRequest{"FAILED", std::string(reason.substr(0, 512))})
                 .dump(-1, ' ', false, json::error_handler_t::replace);
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 200) return Refusal("report FAILED", r);
  return Status::Ok();
}

StatusOr<std::string> PlaneAgentClient::FetchManifest() {
  http::ClientRequest req;
  req.target = "/api/v1/agent/image/manifest";
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 200) return Refusal("image manifest", r);
  const std::string digest = r->HeaderValue("Docker-Content-Digest").value_or("");
  if (!IsSha256Digest(digest)) {
    return DataLoss("image manifest: the plane sent no valid Docker-Content-Digest");
  }
  crypto::Sha256Hasher h;
  h.Update(crypto::AsBytes(r->body));
  const std::string got = DigestOf(h);
  if (got != digest) {
    return DataLoss("image manifest: the bytes hash to " + got + ", not " + digest);
  }
  impl_->manifest_digest = digest;
  return std::move(r->body);
}

const std::string& PlaneAgentClient::manifest_digest() const {
  return impl_->manifest_digest;
}

Status PlaneAgentClient::FetchBlob(const std::string& digest, int out_fd) {
  if (!IsSha256Digest(digest)) {
    return InvalidArgument("blob '" + http::Printable(digest, 80) + "': expected sha256:<hex>");
  }
  crypto::Sha256Hasher h;
  http::ClientRequest req;
  req.target = "/api/v1/agent/image/blobs/" + digest;
  req.body_sink = [&](std::span<const uint8_t> piece) -> Status {
    h.Update(piece);
    return WriteFull(out_fd, piece).WithContext("blob " + digest);
  };
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 200) return Refusal("blob " + digest, r);
  const std::string got = DigestOf(h);
  if (got != digest) return DataLoss("blob " + digest + ": the bytes hash to " + got);
  return Status::Ok();
}

StatusOr<std::string> PlaneAgentClient::SubmitOutput(int bundle_fd, uint64_t size,
                                                     const crypto::EphemeralKey& tee_key,
                                                     const std::string& job_id) {
  // Pass 1: the digest, which the signature covers and the header announces.
  crypto::Bytes buf(kReadPiece);
  crypto::Sha256Hasher h;
  uint64_t at = 0;
  while (at < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - at));
    ASSIGN_OR_RETURN(size_t n, PreadSome(bundle_fd, std::span<uint8_t>(buf.data(), want), at));
    if (n == 0) {
      return InvalidArgument("output bundle: " + std::to_string(at) + " bytes, expected " +
                             std::to_string(size));
    }
    h.Update(crypto::ByteSpan(buf.data(), n));
    at += n;
  }
  const std::string digest = DigestOf(h);
  ASSIGN_OR_RETURN(
      auto sig, tee_key.SignEcdsaSha256(crypto::AsBytes(api::OutputSigningInput(job_id, digest))));

  // Pass 2: the same bytes, streamed; hashed again so a file changed in
  // between aborts the upload (the plane then records nothing).
  crypto::Sha256Hasher again;
  uint64_t sent = 0;
  http::ClientRequest req;
  req.method = "PUT";
  req.target = "/api/v1/agent/output";
  req.headers = {{"Content-Type", "application/x-tar"},
                 {std::string(api::kBundleDigestHeader), digest},
                 {std::string(api::kBundleSignatureHeader), crypto::Base64UrlEncode(sig)}};
  req.body_size = size;
  req.body_reader = [&](std::span<uint8_t> out) -> StatusOr<size_t> {
    if (sent == size) return size_t{0};
    const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), size - sent));
    ASSIGN_OR_RETURN(size_t n, PreadSome(bundle_fd, out.first(want), sent));
    if (n == 0) return DataLoss("output bundle: shrank while it was being sent");
    again.Update(crypto::ByteSpan(out.data(), n));
    sent += n;
    if (sent == size && DigestOf(again) != digest) {
      return DataLoss("output bundle: changed while it was being sent");
    }
    return n;
  };
  auto r = impl_->Send(std::move(req));
  if (!r.ok() || r->status != 201) return Refusal("output upload", r);
  return digest;
}

}  // namespace cce::agent

#include "agent/kbs_client.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "crypto/jwe.h"
#include "http/client.h"

namespace cce::agent {
namespace {

using nlohmann::json;

// A transport failure keeps http::Client's words and code ("cannot reach
// the plane at URL: ..."); an HTTP error carries the plane's message.
Status Refusal(const std::string& step, const StatusOr<http::ClientResponse>& r) {
  if (!r.ok()) return r.status().WithContext(step);
  json body = json::parse(r->body, nullptr, false);
  std::string message = "HTTP " + std::to_string(r->status);
  if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  StatusCode code = r->status == 403 || r->status == 401 ? StatusCode::kPermissionDenied
                    : r->status == 400                   ? StatusCode::kInvalidArgument
                    : r->status == 404                   ? StatusCode::kNotFound
                                                         : StatusCode::kUnavailable;
  return {code, step + ": " + message};
}

StatusOr<json> PostJson(http::Client& client, const std::string& step, const std::string& path,
                        const json& body) {
  http::ClientRequest req;
  req.method = "POST";
  req.target = path;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body.dump();
  auto r = client.Send(req);
  if (!r.ok() || r->status != 200) return Refusal(step, r);
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Internal(step + ": the plane sent no JSON object");
  return j;
}

}  // namespace

ReportData KbsReportData(crypto::ByteSpan nonce, crypto::ByteSpan tee_public_key) {
  crypto::Bytes m(nonce.begin(), nonce.end());
  m.insert(m.end(), tee_public_key.begin(), tee_public_key.end());
  return crypto::Sha512(m);
}

StatusOr<DatasetPin> ParseDatasetPin(crypto::ByteSpan apv) {
  // Fail closed: a release without a pin is not from this plane's version.
  json j = json::parse(apv.begin(), apv.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.size() != 2) {
    return PermissionDenied(
        "JWE apv: expected the dataset pin {\"dataset_id\", \"dataset_version\"}");
  }
  auto id = j.find("dataset_id");
  auto version = j.find("dataset_version");
  if (id == j.end() || !id->is_string()) {
    return PermissionDenied("JWE apv: dataset_id: expected a string");
  }
  if (version == j.end() || !version->is_number_unsigned()) {
    return PermissionDenied("JWE apv: dataset_version: expected a non-negative integer");
  }
  return DatasetPin{id->get<std::string>(), version->get<uint64_t>()};
}

namespace {

StatusOr<http::Client> Connect(const KbsEndpoint& plane) {
  http::ClientOptions options;
  options.base_url = plane.plane_url;
  options.ca_file = plane.ca_file;
  options.unix_socket_path = plane.unix_socket;
  options.connect_timeout = std::chrono::seconds(10);
  options.stall_timeout = std::chrono::seconds(60);
  return http::Client::Create(std::move(options));
}

}  // namespace

StatusOr<KbsSession> AttestTee(const KbsEndpoint& plane, const std::string& credential,
                               QuoteProvider& quotes) {
  ASSIGN_OR_RETURN(http::Client connection, Connect(plane));
  auto shared = std::make_shared<http::Client>(std::move(connection));
  http::Client& http = *shared;
  ASSIGN_OR_RETURN(json auth,
                   PostJson(http, "kbs auth", "/kbs/v0/auth", {{"credential", credential}}));
  const std::string nonce = auth.value("nonce", "");
  ASSIGN_OR_RETURN(crypto::Bytes nonce_raw, crypto::Base64UrlDecode(nonce));

  ASSIGN_OR_RETURN(crypto::EphemeralKey key,
                   crypto::EphemeralKey::Generate(crypto::EcdhCurve::kP256));
  const ReportData report_data = KbsReportData(nonce_raw, key.public_key().public_bytes());
  ASSIGN_OR_RETURN(crypto::Bytes quote, quotes.GetQuote(report_data));

  ASSIGN_OR_RETURN(json attested, PostJson(http, "kbs attest", "/kbs/v0/attest",
                                           {{"credential", credential},
                                            {"nonce", nonce},
                                            {"quote", crypto::Base64UrlEncode(quote)},
                                            {"tee_pubkey", key.PublicJwk()}}));
  KbsSession out;
  out.session = attested.value("session", "");
  out.job_id = auth.value("job", "");
  out.nonce = nonce;
  // Display only: a missing or odd value is 0, never an exception.
  auto int_of = [](const json& j, const char* member) -> int64_t {
    auto it = j.find(member);
    return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
  };
  out.nonce_expires_at = int_of(auth, "expires_at");
  out.expires_at = int_of(attested, "expires_at");
  out.simulated_tee = attested.value("simulated_tee", false);
  if (attested.contains("tcb_status") && attested["tcb_status"].is_string()) {
    out.tcb_status = attested["tcb_status"].get<std::string>();
  }
  if (out.session.empty()) return Internal("kbs attest: the plane sent no session");
  // Kept for the output bundle's signature (PlaneAgentClient::SubmitOutput).
  out.tee_key = std::make_shared<crypto::EphemeralKey>(std::move(key));
  out.connection = std::move(shared);
  return out;
}

StatusOr<DatasetKeys> ReleaseDatasetKeys(const KbsEndpoint& plane, const KbsSession& session,
                                         const std::vector<std::string>& datasets) {
  if (!session.tee_key) return FailedPrecondition("kbs resource: no TEE key in the session");
  std::shared_ptr<http::Client> connection = session.connection;
  if (!connection) {
    ASSIGN_OR_RETURN(http::Client fresh, Connect(plane));
    connection = std::make_shared<http::Client>(std::move(fresh));
  }
  http::Client& http = *connection;
  DatasetKeys out;
  out.session = session.session;
  out.job_id = session.job_id;
  out.tee_key = session.tee_key;
  out.simulated_tee = session.simulated_tee;
  out.tcb_status = session.tcb_status;
  for (const std::string& name : datasets) {
    http::ClientRequest req;
    req.target = "/kbs/v0/resource/" + http::UrlEncode(name) + "/key";
    req.headers = {{"Authorization", "Bearer " + session.session}};
    auto r = http.Send(req);
    if (!r.ok() || r->status != 200) return Refusal("kbs resource " + name, r);
    crypto::JweOptions header;
    ASSIGN_OR_RETURN(crypto::SecretBytes k, crypto::JweDecrypt(*session.tee_key, r->body, &header));
    if (header.kid != "dataset/" + name) {
      return PermissionDenied("kbs resource " + name + ": the JWE is for '" + header.kid + "'");
    }
    auto pin = ParseDatasetPin(header.apv);
    if (!pin.ok()) return pin.status().WithContext("kbs resource " + name);
    out.pins.emplace(name, std::move(*pin));
    out.keys.emplace(name, std::move(k));
  }
  return out;
}

StatusOr<DatasetKeys> FetchDatasetKeys(const KbsEndpoint& plane, const std::string& credential,
                                       const std::vector<std::string>& datasets,
                                       QuoteProvider& quotes) {
  ASSIGN_OR_RETURN(KbsSession session, AttestTee(plane, credential, quotes));
  return ReleaseDatasetKeys(plane, session, datasets);
}

}  // namespace cce::agent

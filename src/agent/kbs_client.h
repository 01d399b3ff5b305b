// The agent's side of the key broker protocol (docs/attestation.md, "Key
// broker"): with the job credential the plane handed the VM, ask for a nonce,
// get a quote whose REPORTDATA is SHA-512(nonce || ephemeral public key),
// attest, then fetch each dataset key wrapped to the ephemeral key (JWE).
// The ephemeral private key stays in the agent (DatasetKeys::tee_key, for
// signing the output bundle); keys come back in locked, wiped memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/quote_provider.h"
#include "base/status.h"
#include "crypto/crypto.h"
#include "crypto/jwe.h"

namespace cce::http {
class Client;
}

namespace cce::agent {

struct KbsEndpoint {
  std::string plane_url;         // https://HOST:PORT (with unix_socket: https://NAME-IN-THE-CERT)
  std::string ca_file;           // the plane's CA (PEM)
  std::string unix_socket = {};  // the plane's agent socket; empty: TCP to plane_url
};

// What the plane recorded at registration: the dataset's manifest must
// carry this id and at least this version (pass both to cce-decryptfs as
// --expect-dataset-id / --min-version). Empty id and 0: none was recorded.
struct DatasetPin {
  std::string dataset_id;
  uint64_t min_version = 0;
};

struct DatasetKeys {
  std::map<std::string, crypto::SecretBytes> keys;  // by dataset name
  std::map<std::string, DatasetPin> pins;           // by dataset name, from the JWE
  std::string session;                              // for later agent calls (PlaneAgentClient)
  std::string job_id;                               // the job the credential is for
  // The TEE's ephemeral key the session is bound to: it signs the output
  // bundle (PlaneAgentClient::SubmitOutput). Never leaves the agent.
  std::shared_ptr<crypto::EphemeralKey> tee_key;
  bool simulated_tee = false;
  std::string tcb_status;
};

// REPORTDATA for a nonce and a TEE public key (the raw point bytes).
ReportData KbsReportData(crypto::ByteSpan nonce, crypto::ByteSpan tee_public_key);

// Parses the pin the plane puts in a released key's JWE (its apv member,
// authenticated): {"dataset_id": string, "dataset_version": integer >= 0}.
StatusOr<DatasetPin> ParseDatasetPin(crypto::ByteSpan apv);

// After attestation: the session token (bound to the TEE key and the job),
// and the TEE's ephemeral key itself, which stays in the agent.
struct KbsSession {
  std::string session;
  std::string job_id;
  bool simulated_tee = false;
  std::string tcb_status;
  std::shared_ptr<crypto::EphemeralKey> tee_key;
  // What steps 1 and 2 exchanged, for a developer's display (`cce-agent
  // attest`): none of it is secret. The nonce (base64url) and its expiry,
  // and the session's key-release expiry (unix seconds).
  std::string nonce = {};
  int64_t nonce_expires_at = 0;
  int64_t expires_at = 0;
  // The TLS connection steps 1 and 2 used (kept alive): step 3 sends on it,
  // so one boot's release costs the plane one TLS handshake, not two. If the
  // plane closed it meanwhile, the client reconnects. Null: connect anew.
  std::shared_ptr<http::Client> connection = {};
};

// Steps 1 and 2: credential -> nonce; quote over SHA-512(nonce || TEE key)
// -> session. The job moves PROVISIONING -> ATTESTED on the plane.
StatusOr<KbsSession> AttestTee(const KbsEndpoint& plane, const std::string& credential,
                               QuoteProvider& quotes);
// Step 3: each dataset's key, unwrapped with the session's TEE key, with the
// pin (dataset id, minimum version) from the JWE's authenticated header.
StatusOr<DatasetKeys> ReleaseDatasetKeys(const KbsEndpoint& plane, const KbsSession& session,
                                         const std::vector<std::string>& datasets);

// Runs the three steps. Errors carry the plane's message (kPermissionDenied
// for a refusal, kUnavailable when the plane cannot be reached).
StatusOr<DatasetKeys> FetchDatasetKeys(const KbsEndpoint& plane, const std::string& credential,
                                       const std::vector<std::string>& datasets,
                                       QuoteProvider& quotes);

}  // namespace cce::agent

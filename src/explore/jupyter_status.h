// jupyter_status: what a session's Jupyter server says about its own
// activity (GET <base_url>api/status: started, last_activity, kernels,
// connections), for the idle culler and for the backends that wait until a
// server answers. Plain HTTP/1.1 over the session's Unix socket (local
// backend) or host:port (kubernetes backend). docs/explore.md.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "explore/backend.h"

namespace cce::explore {

// The largest /api/status body read or parsed; more is refused.
inline constexpr size_t kMaxJupyterStatusBytes = size_t{64} << 10;

struct JupyterActivity {
  int64_t started = 0;        // epoch seconds (UTC) the server started
  int64_t last_activity = 0;  // epoch seconds (UTC) of the last request or kernel activity
  int connections = 0;        // open kernel websocket connections, summed over kernels
  int kernels = 0;            // running kernels
};

// Parses the JSON object Jupyter's /api/status returns, e.g.
// {"connections":0,"kernels":0,"last_activity":"2026-12-06T12:00:00.123456Z",
//  "started":"2026-12-06T11:59:58.000001Z"}. Timestamps are ISO-8601 with
// seconds, an optional fraction (truncated) and a zone (Z or +HH:MM/-HH:MM;
// a timestamp without a zone is refused). Unknown keys are ignored.
// Errors: kInvalidArgument "jupyter status: FIELD: why" (not JSON, not an
// object, a field missing, of the wrong type, negative or out of range, a
// malformed timestamp), or over kMaxJupyterStatusBytes.
StatusOr<JupyterActivity> ParseJupyterStatus(std::string_view json);

// Converts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" to epoch
// seconds. Errors: kInvalidArgument naming what is wrong (the text is not
// echoed beyond 64 bytes).
StatusOr<int64_t> ParseIso8601(std::string_view text);

// GET <base_url>api/status with `Authorization: token <token>` over
// `upstream` (its Unix socket, else http://host:port), 5 s timeout, body at
// most kMaxJupyterStatusBytes. base_url: "/" ... "/" of [A-Za-z0-9._/-].
// The token must be 1..512 printable ASCII characters without spaces; it is
// never part of a message.
// Errors: kInvalidArgument (upstream, base_url or token malformed),
// kUnavailable (no connection, no answer within 5 s, a non-HTTP answer),
// kPermissionDenied (Jupyter answered 401/403: wrong token),
// kInternal (another HTTP status; the message has it), kDataLoss (body over
// the cap), and ParseJupyterStatus's errors for the body.
StatusOr<JupyterActivity> FetchJupyterStatus(const Upstream& upstream, std::string_view base_url,
                                             const crypto::SecretBytes& token);

// Whether a Jupyter server answers at all: GET <base_url>api (Jupyter's
// unauthenticated version endpoint; no token needed, so it works after a
// plane restart too) and returns the HTTP status (200 from Jupyter).
// Errors: kInvalidArgument (upstream or base_url malformed), kUnavailable
// (nothing answered within 5 s).
StatusOr<int> ProbeJupyter(const Upstream& upstream, std::string_view base_url);

}  // namespace cce::explore

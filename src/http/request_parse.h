// Private to src/http: the server's request parsing path as a pure function
// of the bytes, so the fuzz target (request_parse_fuzz.cc) drives it without
// sockets or TLS. It is the same code a connection runs: Beast's parser with
// the RequestParser callbacks (request line, field count, header bytes, body
// cap, JSON nesting), the header checks before routing (target, query,
// transfer coding) and the body checks after it (411/413/415), fed through a
// buffer as large as a connection's. Only routing, admit/handle, deadlines
// and the socket are left out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/server.h"

namespace cce::http::internal {

// The route the request is taken to have matched.
struct ParseRoute {
  BodyPolicy body = BodyPolicy::kBuffered;  // kToFile bodies are counted, not kept
  uint64_t max_body_bytes = 0;              // 0: Limits::max_body_bytes
  int max_nesting = 32;
};

struct ParseOutcome {
  // A whole request was read and passed every check; `request` holds it.
  bool complete = false;
  // Otherwise, when the server would refuse it: the status, error code and
  // message of its answer (0 and empty while more bytes are needed).
  int status = 0;
  std::string code;
  std::string message;
  Request request;      // method, path, query, headers and body, as far as read
  size_t consumed = 0;  // bytes of `bytes` the parser took
};

// Parses one request from `bytes`, handed to the parser in reads of at most
// `read_size` bytes (at least 1) as a connection does. `bytes` may hold
// less than a request (neither complete nor refused) or more (the rest is
// not consumed).
ParseOutcome ParseRequest(std::string_view bytes, const Limits& limits, const ParseRoute& route,
                          size_t read_size);

}  // namespace cce::http::internal

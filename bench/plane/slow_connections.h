// plane_bench's slowloris: holds N TLS connections open against a server from
// one thread (epoll, non-blocking sockets and OpenSSL). Each one connects,
// completes the TLS handshake, starts a request and then sends one more
// header line every second or so, never ending the header. Connections the
// server closes (its header deadline) are replaced, so about N stay held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace cce::bench {

struct SlowConnectionOptions {
  std::string host = "127.0.0.1";  // IPv4 literal
  int port = 0;
  size_t target = 1000;                           // connections to keep held
  std::chrono::milliseconds line_interval{1000};  // mean; each gap is drawn from +-25% of it
  // TCP connects and TLS handshakes in flight at once: opening all at once
  // would only overflow the listen backlog and measure SYN retries.
  size_t max_opening = 256;
};

struct SlowConnectionStats {
  size_t held = 0;           // handshake done, request started, not closed
  size_t opening = 0;        // connecting or handshaking
  uint64_t established = 0;  // connections that reached "held", in total
  uint64_t closed_by_server = 0;
  uint64_t failed = 0;  // connect or handshake failures (incl. closed mid-handshake)
  uint64_t lines_sent = 0;
  std::string last_failure;  // what the last failure was, for the report
};

// Held connections over a window: time-weighted mean, minimum, maximum.
struct HeldWindow {
  double seconds = 0;
  double mean = 0;
  size_t min = 0;
  size_t max = 0;
  uint64_t established = 0;  // re-opened (or first opened) during the window
  uint64_t closed_by_server = 0;
  uint64_t failed = 0;
  uint64_t lines_sent = 0;
};

class SlowConnections {
 public:
  // Starts the thread; it opens connections until `target` are held.
  static StatusOr<std::unique_ptr<SlowConnections>> Start(SlowConnectionOptions options);
  ~SlowConnections();  // stops the thread and closes every connection
  SlowConnections(const SlowConnections&) = delete;
  SlowConnections& operator=(const SlowConnections&) = delete;

  SlowConnectionStats Stats() const;
  // Starts a measurement window (ends a running one), then EndWindow returns
  // how many connections were held during it.
  void BeginWindow();
  HeldWindow EndWindow();

 private:
  struct Impl;
  explicit SlowConnections(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::bench

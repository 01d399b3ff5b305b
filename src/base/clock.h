// Clock: the one way production code reads the time, so tests can control it
// (attestation collateral windows, credential expiry, rental intervals).
#pragma once

#include <cstdint>
#include <ctime>

namespace cce {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowUnix() const = 0;  // seconds since the epoch, UTC
};

class SystemClock : public Clock {
 public:
  int64_t NowUnix() const override { return static_cast<int64_t>(std::time(nullptr)); }
};

}  // namespace cce

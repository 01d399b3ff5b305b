// attest_verify_bench: TDX quote verifications per second on one thread, for
// profiling (`perf record -g attest_verify_bench --mode checked`) and the
// before/after figures in docs/attestation.md "Performance". Not a test.
//
//   attest_verify_bench [--mode fresh|checked|both] [--seconds S] [--quotes N]
//                       [--quote FILE --collateral PATH --at RFC3339]
//
// By default a simulated TEE (sim.h) is created in a temporary directory and
// N distinct quotes (each with its own attestation key, as a fleet of
// booted TDs sends) are verified round robin against its collateral with the
// simulation root and a policy allowing simulation. With --quote, one real
// quote is verified against real collateral at the given time (Intel root;
// the policy's verdict is ignored: only verification cost is measured).
//   fresh    VerifyQuote with no CheckedCollateral: the collateral's
//            signatures and chains are checked for every quote
//   checked  CheckCollateralForReuse once, then VerifyQuote with it (what the
//            plane does): per quote only what depends on the quote
// Prints verifications/s by wall clock and by this thread's CPU time, and the
// load average (the machine may be shared).
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "attest/attest.h"
#include "attest/sim.h"
#include "attest/time_util.h"
#include "base/fd.h"

namespace {

namespace fs = std::filesystem;
using cce::attest::CheckedCollateral;
using Clock = std::chrono::steady_clock;

int Fail(const std::string& what) {
  std::fprintf(stderr, "attest_verify_bench: %s\n", what.c_str());
  return 1;
}

double ThreadCpu() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string LoadAverage() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

struct Setup {
  std::vector<cce::crypto::Bytes> quotes;
  cce::attest::Collateral collateral;
  cce::attest::TrustAnchors anchors = cce::attest::IntelTrustAnchors();
  cce::attest::Policy policy;
  int64_t now = 0;
  bool require_accept = true;
};

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "both";
  double seconds = 3;
  int nquotes = 16;
  std::string quote_file, collateral_path, at;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--help" || a == "-h") {
      std::printf(
          "Usage: attest_verify_bench [--mode fresh|checked|both] [--seconds S] [--quotes N]\n"
          "                           [--quote FILE --collateral PATH --at RFC3339]\n");
      return 0;
    } else if (a == "--mode" && has_value) {
      mode = argv[++i];
      if (mode != "fresh" && mode != "checked" && mode != "both") {
        return Fail("--mode: expected fresh, checked or both");
      }
    } else if (a == "--seconds" && has_value) {
      seconds = std::strtod(argv[++i], nullptr);
      if (!(seconds > 0)) return Fail("--seconds: expected a positive number");
    } else if (a == "--quotes" && has_value) {
      nquotes = std::atoi(argv[++i]);
      if (nquotes <= 0) return Fail("--quotes: expected a positive integer");
    } else if (a == "--quote" && has_value) {
      quote_file = argv[++i];
    } else if (a == "--collateral" && has_value) {
      collateral_path = argv[++i];
    } else if (a == "--at" && has_value) {
      at = argv[++i];
    } else {
      return Fail("unknown argument '" + a + "' (try --help)");
    }
  }

  Setup s;
  std::string tmp;
  struct Cleanup {
    std::string* dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir->empty()) fs::remove_all(*dir, ec);
    }
  } cleanup{&tmp};
  if (!quote_file.empty()) {
    if (collateral_path.empty() || at.empty()) return Fail("--quote needs --collateral and --at");
    auto q = cce::ReadFile(quote_file, 1 << 20);
    if (!q.ok()) return Fail(q.status().message());
    s.quotes.emplace_back(q->begin(), q->end());
    auto c = cce::attest::Collateral::LoadDir(collateral_path);
    if (!c.ok()) return Fail(c.status().message());
    s.collateral = std::move(*c);
    auto t = cce::attest::ParseRfc3339Utc(at);
    if (!t.ok()) return Fail("--at: " + t.status().message());
    s.now = *t;
    s.anchors = cce::attest::IntelTrustAnchors();
    s.policy = cce::attest::Policy::Default();
    s.require_accept = false;
  } else {
    tmp = (fs::temp_directory_path() / "cce-verify-bench-XXXXXX").string();
    if (::mkdtemp(tmp.data()) == nullptr) return Fail("mkdtemp failed");
    s.now = static_cast<int64_t>(::time(nullptr));
    const std::string dir = tmp + "/sim";
    auto st = cce::attest::CreateSimulatedTee(dir, s.now - 60, 86400);
    if (!st.ok()) return Fail(st.message());
    auto c = cce::attest::Collateral::LoadDir(dir + "/collateral");
    if (!c.ok()) return Fail(c.status().message());
    s.collateral = std::move(*c);
    auto root = cce::crypto::ParseCertificatesPem(*cce::ReadFile(dir + "/root.crt", 1 << 20));
    if (!root.ok()) return Fail(root.status().message());
    s.anchors = cce::attest::IntelTrustAnchors();
    s.anchors.simulation_roots.push_back((*root)[0]);
    s.policy.allow_simulated = true;
    for (int i = 0; i < nquotes; ++i) {
      std::array<uint8_t, 64> rd{};
      rd[0] = static_cast<uint8_t>(i);
      auto q = cce::attest::BuildSimulatedQuote(dir, rd);
      if (!q.ok()) return Fail(q.status().message());
      s.quotes.push_back(std::move(*q));
    }
  }

  auto run = [&](bool checked_mode) -> int {
    std::optional<CheckedCollateral> checked;
    if (checked_mode) {
      auto c = cce::attest::CheckCollateralForReuse(s.collateral, s.anchors, s.now);
      if (!c.ok()) return Fail("collateral: " + c.status().message());
      checked = std::move(*c);
    }
    size_t n = 0;
    const double cpu0 = ThreadCpu();
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      for (int k = 0; k < 16; ++k, ++n) {
        const auto& q = s.quotes[n % s.quotes.size()];
        auto v = cce::attest::VerifyQuote(q, s.collateral, s.policy, s.now, std::nullopt, s.anchors,
                                          checked ? &*checked : nullptr);
        if (!v.ok()) return Fail("verification failed: " + v.status().message());
        if (s.require_accept && !v->accepted) return Fail("verification: quote rejected");
      }
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = ThreadCpu() - cpu0;
    std::printf(
        "%-8s %7zu verifications  %8.1f /s wall  %8.1f /s cpu  %7.1f us cpu each  load %s\n",
        checked_mode ? "checked" : "fresh", n, static_cast<double>(n) / wall,
        static_cast<double>(n) / cpu, 1e6 * cpu / static_cast<double>(n), LoadAverage().c_str());
    return 0;
  };
  if (mode != "checked" && run(false) != 0) return 1;
  if (mode != "fresh" && run(true) != 0) return 1;
  return 0;
}

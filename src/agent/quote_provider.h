// Quote providers: where the agent gets a TDX quote over 64 bytes of report
// data. `configfs-tsm` is the real one on TDX guests (Linux >= 6.7, the
// /sys/kernel/config/tsm/report interface); `simulated` (sim_quote.h) signs
// quotes with the development chain of `cce-plane init --simulated-tee` on
// machines without TDX. A simulated quote verifies only against a plane whose
// policy enables simulation; it can never pass for a real one (it chains to
// the simulation root, not Intel's).
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::agent {

using ReportData = std::array<uint8_t, 64>;

class QuoteProvider {
 public:
  virtual ~QuoteProvider() = default;
  virtual std::string name() const = 0;
  virtual bool simulated() const = 0;
  virtual StatusOr<crypto::Bytes> GetQuote(const ReportData& report_data) = 0;
};

// configfs-tsm: creates a report entry under `root`, writes the report data
// to inblob, reads outblob and checks that `generation` did not move while
// it did so (another writer would have changed the quote under it), checks
// `provider` is "tdx_guest", then removes the entry. `root` is injectable for
// tests; production uses the default.
// `after_mkdir` is a test seam: on a real configfs the kernel creates the
// entry's attribute files with the directory; a test on a plain directory
// creates them there.
std::unique_ptr<QuoteProvider> MakeConfigfsTsmProvider(
    std::string root = "/sys/kernel/config/tsm/report",
    std::function<void(const std::string& entry_dir)> after_mkdir = nullptr);

}  // namespace cce::agent

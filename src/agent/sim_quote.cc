#include "agent/sim_quote.h"

#include <mutex>
#include <optional>
#include <utility>

namespace cce::agent {
namespace {

class SimulatedQuoteProvider : public QuoteProvider {
 public:
  SimulatedQuoteProvider(std::string sim_dir, attest::SimulatedTd td)
      : sim_dir_(std::move(sim_dir)), td_(td) {}
  std::string name() const override { return "simulated"; }
  bool simulated() const override { return true; }

  StatusOr<crypto::Bytes> GetQuote(const ReportData& report_data) override {
    const attest::SimulatedQuoter* quoter = nullptr;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!quoter_) {  // this provider's "boot": one attestation key from now on
        auto created = attest::SimulatedQuoter::Create(sim_dir_);
        if (!created.ok()) return created.status().WithContext("simulated quote provider");
        quoter_.emplace(std::move(*created));
      }
      quoter = &*quoter_;
    }
    auto quote = quoter->Quote(report_data, td_);
    if (!quote.ok()) return quote.status().WithContext("simulated quote provider");
    return quote;
  }

 private:
  std::string sim_dir_;
  attest::SimulatedTd td_;
  std::mutex mu_;
  std::optional<attest::SimulatedQuoter> quoter_;
};

}  // namespace

std::unique_ptr<QuoteProvider> MakeSimulatedQuoteProvider(std::string sim_dir,
                                                          attest::SimulatedTd td) {
  return std::make_unique<SimulatedQuoteProvider>(std::move(sim_dir), td);
}

}  // namespace cce::agent

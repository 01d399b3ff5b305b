#include "agent/sim_quote.h"

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
    auto quote = attest::BuildSimulatedQuote(sim_dir_, report_data, td_);
    if (!quote.ok()) return quote.status().WithContext("simulated quote provider");
    return quote;
  }

 private:
  std::string sim_dir_;
  attest::SimulatedTd td_;
};

}  // namespace

std::unique_ptr<QuoteProvider> MakeSimulatedQuoteProvider(std::string sim_dir,
                                                          attest::SimulatedTd td) {
  return std::make_unique<SimulatedQuoteProvider>(std::move(sim_dir), td);
}

}  // namespace cce::agent

// The `simulated` quote provider: for machines without TDX. It signs TDX
// quotes in the real layout with the development chain that
// `cce-plane init --simulated-tee` (attest::CreateSimulatedTee) created. Such
// a quote verifies only against a plane that trusts that chain's root AND
// whose policy sets allow_simulated; Intel's root never covers it.
#pragma once

#include <memory>
#include <string>

#include "agent/quote_provider.h"
#include "attest/sim.h"

namespace cce::agent {

// sim_dir is the simulated TEE directory (DATA_DIR/attestation/sim for a
// plane initialized with --simulated-tee): its pck_chain.pem and pck.key
// (mode 0600) are read at the first GetQuote (and again after a failed one),
// so a missing or unreadable directory is an error there, not here. One
// provider is one platform boot: its quotes share one attestation key
// (attest::SimulatedQuoter), as a real QE's do. td is what the simulated TD reports.
// name() is "simulated", simulated() is true.
std::unique_ptr<QuoteProvider> MakeSimulatedQuoteProvider(std::string sim_dir,
                                                          attest::SimulatedTd td = {});

}  // namespace cce::agent

// Private to src/cli: `cce` on a plane whose ledger is a RentalMarket
// contract (docs/ledger.md): `cce wallet link|list`, and what `cce rent` and
// `cce rentals` (plane_commands.cc) do there.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "api/wire.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "cli/plane_client.h"

namespace cce::cli {

std::vector<Command> WalletCommands();

// GET /api/v1/ledger. A plane without the route (older than the Ethereum
// ledger) is an embedded one. Errors: what PlaneClient::Get returns, or
// kInternal for an answer that does not decode.
StatusOr<api::LedgerInfo> GetLedgerInfo(PlaneClient& c);

// The flags `cce rent` has for an Ethereum plane (with --days and --output).
std::vector<FlagSpec> EthereumRentFlags();
// True when any of them was given (refused on an embedded plane).
bool HasEthereumRentFlags(const ParsedFlags& f);

// `cce rent NAME --days N` on an Ethereum plane: the rent(datasetId, days)
// transaction from --key-file's address, paying the price the contract
// itself states, then the wait for the plane's confirmations and for the
// plane to index the Rented event. Progress on stderr; the text result on
// stdout unless json_out; returns the --output json object.
// Errors: kInvalidArgument for flags (--key-file missing, --days above the
// contract's maxDays); kFailedPrecondition when the key's address is not
// linked to the caller, when the node, contract or dataset is not what the
// plane says (chain id, planeId(), not registered, inactive) or the
// transaction reverts (reason decoded); kUnavailable when
// the node cannot be reached or the plane did not index the rental in time
// (the transaction hash named).
StatusOr<nlohmann::json> EthereumRent(const ParsedFlags& f, PlaneClient& c,
                                      const api::LedgerInfo& ledger, uint32_t days, bool json_out);

// `cce rentals` rows on an Ethereum plane, with a header row.
void PrintEthereumRentals(const api::RentalList& list);

}  // namespace cce::cli

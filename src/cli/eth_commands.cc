// `cce wallet link|list` and `cce rent` on an Ethereum plane (docs/ledger.md,
// docs/cli.md). The CLI trusts the plane for where the contract is and what
// the dataset's id on it is, but reads the price, the maximum days and
// whether the dataset is active from the contract itself, checks that the
// node is on the plane's chain and that the contract is the plane's
// (planeId()), and signs a wallet-link message only once it is exactly the
// message it expects (wallet_message.h).
#include "cli/eth_commands.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>
#include <optional>
#include <thread>

#include "base/fd.h"
#include "cli/cli.h"
#include "cli/plane_verb.h"
#include "cli/table.h"
#include "cli/wallet_message.h"
#include "eth/eip191.h"
#include "eth/eth.h"
#include "eth/rental_market.h"
#include "eth/rpc.h"
#include "eth/secp256k1.h"
#include "eth/send.h"

namespace cce::cli {
namespace {

using nlohmann::json;

constexpr char kLedgerPath[] = "/api/v1/ledger";

// The Ethereum fields of GET /api/v1/ledger, parsed.
struct EthLedger {
  uint64_t chain_id = 0;
  eth::Address contract;
  uint64_t confirmations = 1;
  std::string rpc;
  eth::Hash32 plane_id;
};

Status PlaneDrift(const std::string& field, const std::string& what) {
  return Internal(std::string("the plane's response to GET ") + kLedgerPath + ": " + field + ": " +
                  what);
}

StatusOr<EthLedger> EthLedgerOf(const api::LedgerInfo& l) {
  if (l.backend != "ethereum") {
    return FailedPrecondition("this plane's ledger is '" + l.backend +
                              "', not ethereum: wallets and on-chain rentals are for planes "
                              "whose ledger is a RentalMarket contract (docs/ledger.md)");
  }
  EthLedger out;
  if (!l.chain_id || *l.chain_id <= 0) return PlaneDrift("chain_id", "missing or not positive");
  out.chain_id = static_cast<uint64_t>(*l.chain_id);
  if (!l.contract) return PlaneDrift("contract", "missing");
  auto contract = eth::ParseAddress(*l.contract, "contract");
  if (!contract.ok()) return PlaneDrift("contract", contract.status().message());
  out.contract = *contract;
  if (!l.confirmations || *l.confirmations < 1) {
    return PlaneDrift("confirmations", "missing or below 1");
  }
  out.confirmations = static_cast<uint64_t>(*l.confirmations);
  out.rpc = l.rpc.value_or("");
  if (!l.plane_id) return PlaneDrift("plane_id", "missing");
  auto plane_id = eth::ParseHash32(*l.plane_id, "plane_id");
  if (!plane_id.ok()) return PlaneDrift("plane_id", plane_id.status().message());
  out.plane_id = *plane_id;
  return out;
}

void Progress(std::string_view line) {
  std::cerr << "  " << line << "\n" << std::flush;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// "90s", "30m", "2h", "1d" or seconds.
StatusOr<std::chrono::seconds> DurationFlag(const ParsedFlags& f, const std::string& name,
                                            std::chrono::seconds fallback) {
  auto text = f.Get(name);
  if (!text) return fallback;
  const std::string& t = *text;
  auto bad = [&] {
    return InvalidArgument("--" + name + ": '" + t +
                           "': expected a duration such as 90s, 30m or 2h (or seconds)");
  };
  if (t.empty()) return bad();
  int64_t unit = 1;
  std::string digits = t;
  if (t.back() < '0' || t.back() > '9') {
    switch (t.back()) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: return bad();
    }
    digits.pop_back();
  }
  if (digits.empty() || digits.size() > 7 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  const int64_t n = std::stoll(digits) * unit;
  if (n <= 0) return bad();
  return std::chrono::seconds(n);
}

StatusOr<eth::RpcClient> NodeFor(const ParsedFlags& f, const EthLedger& l) {
  std::string url = f.Get("rpc").value_or(l.rpc);
  if (url.empty()) {
    return InvalidArgument(
        "the plane advertises no rpc URL for its ledger: give the node with --rpc URL");
  }
  eth::RpcOptions o;
  o.url = url;
  o.ca_file = f.Get("rpc-ca").value_or("");
  o.timeout = std::chrono::seconds(30);
  return eth::RpcClient::Create(std::move(o));
}

// The node must be on the plane's chain, and the contract there must be the
// plane's: otherwise a payment would go where the plane never looks.
Status CheckNodeAndContract(eth::RpcClient& rpc, const EthLedger& l) {
  ASSIGN_OR_RETURN(uint64_t node_chain, rpc.ChainId());
  if (node_chain != l.chain_id) {
    return FailedPrecondition("the node at " + rpc.url_for_messages() + " is on chain " +
                              std::to_string(node_chain) + ", but the plane's ledger is on chain " +
                              std::to_string(l.chain_id) +
                              ": nothing was sent (give a node of chain " +
                              std::to_string(l.chain_id) + " with --rpc URL)");
  }
  ASSIGN_OR_RETURN(crypto::Bytes code, rpc.GetCode(l.contract));
  if (code.empty()) {
    return FailedPrecondition("there is no contract at " + l.contract.Checksummed() + " on chain " +
                              std::to_string(l.chain_id) + " (node " + rpc.url_for_messages() +
                              "): nothing was sent");
  }
  ASSIGN_OR_RETURN(crypto::Bytes ret, rpc.EthCall(l.contract, eth::EncodePlaneIdGetter()));
  ASSIGN_OR_RETURN(eth::Hash32 plane_id, eth::DecodeBytes32Return(ret, "planeId()"));
  if (plane_id != l.plane_id) {
    return FailedPrecondition("the contract at " + l.contract.Checksummed() + " belongs to plane " +
                              plane_id.Hex() + ", not to this plane (" + l.plane_id.Hex() +
                              "): nothing was sent");
  }
  return Status::Ok();
}

// The Rented event of `dataset` paid by `payer` in the receipt.
std::optional<eth::RentedEvent> RentedIn(const eth::Receipt& r, const eth::Address& contract,
                                         const eth::Hash32& dataset, const eth::Address& payer) {
  for (const eth::Log& log : r.logs) {
    if (log.address != contract || log.topics.empty() || log.topics[0] != eth::RentedTopic()) {
      continue;
    }
    auto e = eth::DecodeRented(log);
    if (e.ok() && e->dataset == dataset && e->consumer == payer) return *e;
  }
  return std::nullopt;
}

// Polls GET /api/v1/rentals until the plane lists the rental of `tx`.
StatusOr<api::Rental> WaitIndexed(PlaneClient& c, const std::string& dataset,
                                  const eth::Receipt& receipt, const eth::RentedEvent& e,
                                  std::chrono::seconds timeout) {
  const std::string tx = receipt.tx_hash.Hex();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Progress("waiting for the plane to index " + tx);
  for (;;) {
    ASSIGN_OR_RETURN(json r, c.Get("/api/v1/rentals"));
    ASSIGN_OR_RETURN(api::RentalList list,
                     DecodeResponse<api::RentalList>(r, "GET /api/v1/rentals"));
    for (const api::Rental& x : list.rentals) {
      if (x.tx_hash && Lower(*x.tx_hash) == tx && x.dataset == dataset) return x;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::string why;
  if (auto l = GetLedgerInfo(c); l.ok()) {
    if (l->last_sync_error) why = "; its last sync failed: " + *l->last_sync_error;
    if (l->indexed_through) {
      why += "; it has indexed through block " + std::to_string(*l->indexed_through);
    }
  }
  return Unavailable("transaction " + tx + " (block " + std::to_string(receipt.block_number) +
                     ", rental of " + dataset + " until " + FormatTime(e.end) +
                     ") is confirmed, but the plane has not indexed it after " +
                     std::to_string(timeout.count()) + " s" + why +
                     ". The rental counts once the plane indexes it: check with `cce rentals`");
}

int WalletLink(const Args& args) {
  FlagParser p(
      "cce wallet link (--key-file F | --address A [--signature-file F] [--message-out F]) "
      "[--output json]",
      "Links an Ethereum address to your plane user (consumer), so that rentals\n"
      "paid from it count for you. The plane sends a one-time message (valid 5\n"
      "minutes); the CLI checks it names this plane, its chain, you and the address,\n"
      "then signs it (EIP-191 personal_sign) with the key in F.\n"
      "With --address (a hardware or browser wallet), the CLI prints the message\n"
      "instead (and writes it to --message-out F, exactly, for a signing tool) and\n"
      "reads the signature (0x + 130 hex) from --signature-file F or stdin.",
      {{"key-file", "F", "the address's private key (0x + 64 hex; mode 0600)"},
       {"address", "A", "the address (0x + 40 hex) whose wallet signs the message"},
       {"signature-file", "F", "with --address: read the signature from F (default stdin)"},
       {"message-out", "F", "with --address: also write the message to F"},
       kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        auto key_path = f.Get("key-file");
        auto address_flag = f.Get("address");
        if (key_path.has_value() == address_flag.has_value()) {
          return InvalidArgument(
              "give one of --key-file F (sign here) or --address A (sign with "
              "your wallet)");
        }
        if (key_path && (f.Has("signature-file") || f.Has("message-out"))) {
          return InvalidArgument(
              "--signature-file and --message-out go with --address, not "
              "--key-file");
        }
        // The key first: a bad key file is said before anything is asked.
        std::optional<eth::PrivateKey> key;
        eth::Address address;
        if (key_path) {
          ASSIGN_OR_RETURN(eth::PrivateKey k, eth::PrivateKey::ReadFile(*key_path));
          address = k.address();
          key.emplace(std::move(k));
        } else {
          ASSIGN_OR_RETURN(address, eth::ParseAddress(*address_flag, "--address"));
        }
        ASSIGN_OR_RETURN(api::LedgerInfo info, GetLedgerInfo(c));
        ASSIGN_OR_RETURN(EthLedger l, EthLedgerOf(info));
        ASSIGN_OR_RETURN(json who, c.Get("/api/v1/whoami"));
        ASSIGN_OR_RETURN(api::User me, DecodeResponse<api::User>(who, "GET /api/v1/whoami"));

        api::WalletChallengeRequest req{.address = address.Checksummed()};
        ASSIGN_OR_RETURN(json cj, c.Post("/api/v1/wallet/challenge", api::ToJson(req)));
        ASSIGN_OR_RETURN(api::WalletChallenge ch,
                         DecodeResponse<api::WalletChallenge>(cj, "POST /api/v1/wallet/challenge"));
        RETURN_IF_ERROR(
            CheckLinkMessage(ch.message, {.plane_id = l.plane_id,
                                          .chain_id = l.chain_id,
                                          .user = me.name,
                                          .address = address,
                                          .nonce = ch.nonce,
                                          .now = static_cast<int64_t>(std::time(nullptr))}));

        std::string signature;
        if (key) {
          ASSIGN_OR_RETURN(signature, eth::SignPersonal(ch.message, *key));
        } else {
          if (auto out = f.Get("message-out")) {
            RETURN_IF_ERROR(WriteFileAtomic(
                *out, {reinterpret_cast<const uint8_t*>(ch.message.data()), ch.message.size()},
                0644));
          }
          auto sig_file = f.Get("signature-file");
          std::cerr << "Sign this message with the wallet of " << address.Checksummed()
                    << " (personal_sign, EIP-191), exactly as shown between the lines (no newline "
                       "after the last line):\n-----\n"
                    << ch.message << "\n-----\n"
                    << (sig_file ? "Reading the signature from " + *sig_file + " ...\n"
                                 : std::string("Paste the signature (0x + 130 hex) and press "
                                               "Enter:\n"))
                    << std::flush;
          std::string text;
          if (sig_file) {
            ASSIGN_OR_RETURN(text, ReadFile(*sig_file, 4096));
          } else {
            // One line: a pasted signature ends with Enter, not end of file.
            if (!std::getline(std::cin, text)) return InvalidArgument("no signature on stdin");
          }
          const size_t b = text.find_first_not_of(" \t\r\n");
          const size_t e = text.find_last_not_of(" \t\r\n");
          signature = b == std::string::npos ? "" : text.substr(b, e - b + 1);
          if (signature.empty()) return InvalidArgument("no signature was given");
          // Said here, before the nonce is spent on a signature the plane refuses.
          ASSIGN_OR_RETURN(eth::Address signer, eth::RecoverPersonalSigner(ch.message, signature));
          if (signer != address) {
            return InvalidArgument("the signature is by " + signer.Checksummed() + ", not by " +
                                   address.Checksummed() +
                                   ": sign the message with the wallet of " +
                                   address.Checksummed());
          }
        }
        api::WalletLinkRequest link{
            .address = address.Checksummed(), .nonce = ch.nonce, .signature = signature};
        ASSIGN_OR_RETURN(json lj, c.Post("/api/v1/wallet/link", api::ToJson(link)));
        ASSIGN_OR_RETURN(api::Wallet w,
                         DecodeResponse<api::Wallet>(lj, "POST /api/v1/wallet/link"));
        if (!json_out) std::cout << "linked " << address.Checksummed() << " to " << w.user << "\n";
        return lj;
      });
}

int WalletList(const Args& args) {
  FlagParser p("cce wallet list [--output json]",
               "Lists the Ethereum addresses linked to you (operator: to everyone).",
               {kOutputFlag});
  return WithPlane(
      p, args, 0, [&](const ParsedFlags&, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(json r, c.Get("/api/v1/wallet"));
        ASSIGN_OR_RETURN(api::WalletList list,
                         DecodeResponse<api::WalletList>(r, "GET /api/v1/wallet"));
        if (!json_out) {
          Table t({"ADDRESS", "USER", "LINKED"});
          for (const api::Wallet& w : list.wallets) {
            t.AddRow({w.address, w.user, FormatTime(w.linked_at)});
          }
          std::cout << t.Render();
        }
        return ListItems(r, "wallets");
      });
}

}  // namespace

std::vector<Command> WalletCommands() {
  return {
      {{"wallet", "link"}, "link an Ethereum address to you (signed challenge)", WalletLink},
      {{"wallet", "list"}, "list linked Ethereum addresses", WalletList},
  };
}

StatusOr<api::LedgerInfo> GetLedgerInfo(PlaneClient& c) {
  auto r = c.Get(kLedgerPath);
  if (!r.ok()) {
    // A plane older than the Ethereum ledger has no such route.
    if (r.status().code() != StatusCode::kNotFound) return r.status();
    api::LedgerInfo embedded;
    embedded.backend = "embedded";
    return embedded;
  }
  return DecodeResponse<api::LedgerInfo>(*r, std::string("GET ") + kLedgerPath);
}

std::vector<FlagSpec> EthereumRentFlags() {
  return {
      {"key-file", "F", "Ethereum plane: pay from the key in F (0x + 64 hex; mode 0600)"},
      {"rpc", "URL", "Ethereum plane: the node to send through (default: the plane's rpc)"},
      {"rpc-ca", "FILE", "Ethereum plane: PEM CAs for an https --rpc"},
      {"timeout", "DURATION", "Ethereum plane: wait for the confirmations (default 10m)"},
      {"index-timeout", "DURATION",
       "Ethereum plane: then wait for the plane to index it (default 2m)"},
  };
}

bool HasEthereumRentFlags(const ParsedFlags& f) {
  for (const FlagSpec& s : EthereumRentFlags()) {
    if (f.Has(s.name)) return true;
  }
  return false;
}

StatusOr<json> EthereumRent(const ParsedFlags& f, PlaneClient& c, const api::LedgerInfo& info,
                            uint32_t days, bool json_out) {
  const std::string name = f.positional()[0];
  auto key_path = f.Get("key-file");
  if (!key_path) {
    return InvalidArgument(
        "--key-file F is required: rentals on this plane are Ethereum "
        "transactions, paid from the key in F (link its address first: cce "
        "wallet link --key-file F)");
  }
  ASSIGN_OR_RETURN(std::chrono::seconds timeout,
                   DurationFlag(f, "timeout", std::chrono::minutes(10)));
  ASSIGN_OR_RETURN(std::chrono::seconds index_timeout,
                   DurationFlag(f, "index-timeout", std::chrono::minutes(2)));
  ASSIGN_OR_RETURN(eth::PrivateKey key, eth::PrivateKey::ReadFile(*key_path));
  ASSIGN_OR_RETURN(EthLedger l, EthLedgerOf(info));

  const std::string path = "/api/v1/ledger/datasets/" + name;
  ASSIGN_OR_RETURN(json dj, c.Get(path));
  ASSIGN_OR_RETURN(api::LedgerDataset ld, DecodeResponse<api::LedgerDataset>(dj, "GET " + path));
  auto id = eth::ParseHash32(ld.chain_dataset_id, "chain_dataset_id");
  if (!id.ok()) {
    return Internal("the plane's response to GET " + path + ": " + id.status().message());
  }
  auto ld_contract = eth::ParseAddress(ld.contract, "contract");
  if (ld.chain_id != static_cast<int64_t>(l.chain_id) || !ld_contract.ok() ||
      *ld_contract != l.contract) {
    return Internal("the plane's response to GET " + path + " names chain " +
                    std::to_string(ld.chain_id) + " contract " + ld.contract + ", but GET " +
                    kLedgerPath + " chain " + std::to_string(l.chain_id) + " contract " +
                    l.contract.Checksummed());
  }

  // A rental counts only for the user the paying address is linked to: one
  // paid from an address not linked to the caller would buy them nothing.
  const eth::Address payer = key.address();
  ASSIGN_OR_RETURN(json wj, c.Get("/api/v1/wallet"));
  ASSIGN_OR_RETURN(api::WalletList wallets,
                   DecodeResponse<api::WalletList>(wj, "GET /api/v1/wallet"));
  ASSIGN_OR_RETURN(json who, c.Get("/api/v1/whoami"));
  ASSIGN_OR_RETURN(api::User me, DecodeResponse<api::User>(who, "GET /api/v1/whoami"));
  bool linked = false;
  for (const api::Wallet& w : wallets.wallets) {
    auto a = eth::ParseAddress(w.address, "address");
    if (a.ok() && *a == payer && w.user == me.name) linked = true;
  }
  if (!linked) {
    return FailedPrecondition(payer.Checksummed() + " (the address of " + *key_path +
                              ") is not linked to you (" + me.name +
                              "): a rental it pays would not count for you; link it first with "
                              "`cce wallet link --key-file " +
                              *key_path + "`. Nothing was sent");
  }

  ASSIGN_OR_RETURN(eth::RpcClient rpc, NodeFor(f, l));
  RETURN_IF_ERROR(CheckNodeAndContract(rpc, l));
  // The price and the limits from the contract, never from the plane.
  ASSIGN_OR_RETURN(crypto::Bytes ret, rpc.EthCall(l.contract, eth::EncodeDatasetGetter(*id)));
  ASSIGN_OR_RETURN(eth::ChainDataset cd, eth::DecodeDataset(ret));
  if (cd.provider == eth::Address{}) {
    return FailedPrecondition("dataset " + name + " is not registered on the contract " +
                              l.contract.Checksummed() + " (id " + id->Hex() +
                              "): the operator registers it with `cce-plane ledger "
                              "register-dataset " +
                              name + "`; nothing was sent");
  }
  if (!cd.active) {
    return FailedPrecondition("dataset " + name + " is deactivated on the contract " +
                              l.contract.Checksummed() + ": it cannot be rented; nothing was sent");
  }
  if (days > cd.max_days) {
    return InvalidArgument("--days " + std::to_string(days) + ": the contract rents " + name +
                           " for at most " + std::to_string(cd.max_days) +
                           " days; nothing was sent");
  }
  const eth::U256 cost = cd.price_per_day * days;  // < 2^128 * 2^32: no overflow
  Progress("renting " + name + " for " + std::to_string(days) + " day(s) at " +
           eth::FormatEther(cd.price_per_day) + "/day: " + eth::FormatEther(cost) + " from " +
           payer.Checksummed() + " (chain " + std::to_string(l.chain_id) + ", contract " +
           l.contract.Checksummed() + ", " + std::to_string(l.confirmations) + " confirmation(s))");

  eth::SendOptions so;
  so.confirmations = l.confirmations;
  so.timeout = timeout;
  so.progress = Progress;
  eth::TxRequest tx{.to = l.contract, .value = cost, .data = eth::EncodeRent(*id, days)};
  ASSIGN_OR_RETURN(eth::Receipt receipt, eth::SendAndWait(rpc, l.chain_id, key, tx, so));
  auto event = RentedIn(receipt, l.contract, *id, payer);
  if (!event) {
    return Internal("transaction " + receipt.tx_hash.Hex() + " was mined in block " +
                    std::to_string(receipt.block_number) +
                    " but its receipt has no Rented event of " + name + " paid by " +
                    payer.Checksummed());
  }
  ASSIGN_OR_RETURN(api::Rental indexed, WaitIndexed(c, name, receipt, *event, index_timeout));

  json out{{"dataset", name},
           {"days", days},
           {"tx_hash", receipt.tx_hash.Hex()},
           {"block", receipt.block_number},
           {"block_hash", receipt.block_hash.Hex()},
           {"payer", payer.Hex()},
           {"amount_wei", eth::ToDecimal(event->amount)},
           {"cost", eth::FormatEther(event->amount)},
           {"start", event->start},
           {"end", event->end},
           {"chain_id", l.chain_id},
           {"contract", l.contract.Checksummed()},
           {"consumer", indexed.consumer}};
  if (!json_out) {
    std::cout << "rented " << name << " until " << FormatTime(event->end) << "\n"
              << "  transaction " << receipt.tx_hash.Hex() << " in block " << receipt.block_number
              << " (chain " << l.chain_id << ")\n"
              << "  paid " << eth::FormatEther(event->amount) << " from " << payer.Checksummed()
              << "\n";
  }
  return out;
}

void PrintEthereumRentals(const api::RentalList& list) {
  Table t({"DATASET", "CONSUMER", "START", "END", "TX", "BLOCK", "PAYER"});
  for (const api::Rental& x : list.rentals) {
    std::string payer = x.payer.value_or("-");
    if (auto a = eth::ParseAddress(payer, "payer"); a.ok()) payer = a->Checksummed();
    t.AddRow({x.dataset, x.consumer, FormatTime(x.start), FormatTime(x.end),
              x.tx_hash.value_or("-"), x.block ? std::to_string(*x.block) : "-", payer});
  }
  std::cout << t.Render();
}

}  // namespace cce::cli

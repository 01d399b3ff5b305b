#include "eth/rental_market.h"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <vector>

#include "eth/abi.h"

// Generated at build time from contracts/build/RentalMarket.json
// (src/eth/embed_contract.cmake, which refuses anything but hex bytecode).
namespace cce::eth::contract_build {
extern const uint8_t kRentalMarketBytecode[];
extern const size_t kRentalMarketBytecodeSize;
extern const uint8_t kRentalMarketDeployedBytecode[];
extern const size_t kRentalMarketDeployedBytecodeSize;
extern const char kRentalMarketCompiler[];
}  // namespace cce::eth::contract_build

namespace cce::eth {
namespace {

constexpr int64_t kSecondsPerDay = 86'400;

std::string Tx(const Log& log) {
  return "log " + log.tx_hash.Hex() + "#" + std::to_string(log.log_index);
}

// The words after a 4-byte selector, exactly n of them; nullopt otherwise.
std::optional<std::vector<Word>> ArgWords(crypto::ByteSpan data, size_t n) {
  if (data.size() != 4 + 32 * n) return std::nullopt;
  auto words = AbiWords(data.subspan(4), n, "revert");
  if (!words.ok()) return std::nullopt;
  return std::move(words).value();
}

std::string PrintableText(crypto::ByteSpan bytes, size_t max) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    const uint8_t c = bytes[i];
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '?';
  }
  if (bytes.size() > max) out += "...";
  return out;
}

std::string UnknownRevert(crypto::ByteSpan data) {
  constexpr size_t kShown = 68;  // a selector and two words
  std::string hex = ToHex(data.first(std::min(data.size(), kShown)));
  if (data.size() > kShown) hex += "...";
  return "unknown revert data " + hex;
}

// Error(string): offset word (0x20), length word, then the bytes.
std::optional<std::string> DescribeErrorString(crypto::ByteSpan data) {
  if (data.size() < 4 + 64) return std::nullopt;
  auto head = AbiWords(data.subspan(4, 64), 2, "Error");
  if (!head.ok()) return std::nullopt;
  auto offset = WordUint((*head)[0], 256, "offset");
  auto length = WordUint((*head)[1], 256, "length");
  if (!offset.ok() || !length.ok() || *offset != 32) return std::nullopt;
  const size_t available = data.size() - 4 - 64;
  if (*length > available) return std::nullopt;
  const auto n = static_cast<size_t>(*length);
  return "Error(\"" + PrintableText(data.subspan(4 + 64, n), 200) + "\")";
}

}  // namespace

Hash32 PlaneId(crypto::ByteSpan plane_ed25519_public_key) {
  constexpr std::string_view kDomain = "cce4long.plane.v1";
  crypto::Bytes in(kDomain.begin(), kDomain.end());
  in.insert(in.end(), plane_ed25519_public_key.begin(), plane_ed25519_public_key.end());
  return Keccak256(in);
}

Hash32 ChainDatasetId(const Hash32& plane_id, int64_t dataset_id) {
  const crypto::Bytes encoded = AbiEncoder()
                                    .Bytes32(Keccak256(std::string_view("cce4long.dataset.v1")))
                                    .Bytes32(plane_id)
                                    .Uint(U256(static_cast<uint64_t>(dataset_id)))
                                    .Finish();
  return Keccak256(encoded);
}

crypto::Bytes DeployData(const Hash32& plane_id) {
  crypto::Bytes out(
      contract_build::kRentalMarketBytecode,
      contract_build::kRentalMarketBytecode + contract_build::kRentalMarketBytecodeSize);
  const crypto::Bytes args = AbiEncoder().Bytes32(plane_id).Finish();
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

crypto::Bytes DeployedBytecode() {
  return crypto::Bytes(contract_build::kRentalMarketDeployedBytecode,
                       contract_build::kRentalMarketDeployedBytecode +
                           contract_build::kRentalMarketDeployedBytecodeSize);
}

std::string_view ContractCompiler() {
  return contract_build::kRentalMarketCompiler;
}

crypto::Bytes EncodeRegisterDataset(const Hash32& id, const Address& provider,
                                    const U256& price_per_day, uint32_t max_days) {
  return AbiEncoder("registerDataset(bytes32,address,uint128,uint32)")
      .Bytes32(id)
      .Addr(provider)
      .Uint(price_per_day)
      .Uint(max_days)
      .Finish();
}

crypto::Bytes EncodeDeactivateDataset(const Hash32& id) {
  return AbiEncoder("deactivateDataset(bytes32)").Bytes32(id).Finish();
}

crypto::Bytes EncodeRent(const Hash32& id, uint32_t days) {
  return AbiEncoder("rent(bytes32,uint32)").Bytes32(id).Uint(days).Finish();
}

crypto::Bytes EncodeSetPaused(bool paused) {
  return AbiEncoder("setPaused(bool)").Bool(paused).Finish();
}

crypto::Bytes EncodeWithdraw() {
  return AbiEncoder("withdraw()").Finish();
}

crypto::Bytes EncodeDatasetGetter(const Hash32& id) {
  return AbiEncoder("datasets(bytes32)").Bytes32(id).Finish();
}

crypto::Bytes EncodePlaneIdGetter() {
  return AbiEncoder("planeId()").Finish();
}

crypto::Bytes EncodeOperatorGetter() {
  return AbiEncoder("operator()").Finish();
}

crypto::Bytes EncodePausedGetter() {
  return AbiEncoder("paused()").Finish();
}

crypto::Bytes EncodePendingWithdrawalsGetter(const Address& provider) {
  return AbiEncoder("pendingWithdrawals(address)").Addr(provider).Finish();
}

StatusOr<ChainDataset> DecodeDataset(crypto::ByteSpan ret) {
  if (ret.size() != 4 * 32) {
    return InvalidArgument("datasets(): expected 128 bytes of return data, got " +
                           std::to_string(ret.size()));
  }
  ASSIGN_OR_RETURN(std::vector<Word> w, AbiWords(ret, 4, "datasets()"));
  ChainDataset d;
  ASSIGN_OR_RETURN(d.provider, WordAddress(w[0], "datasets(): provider"));
  ASSIGN_OR_RETURN(d.price_per_day, WordUint(w[1], 128, "datasets(): pricePerDay"));
  ASSIGN_OR_RETURN(U256 max_days, WordUint(w[2], 32, "datasets(): maxDays"));
  d.max_days = static_cast<uint32_t>(max_days);
  ASSIGN_OR_RETURN(d.active, WordBool(w[3], "datasets(): active"));
  return d;
}

namespace {
StatusOr<Word> OneWord(crypto::ByteSpan ret, std::string_view function) {
  if (ret.size() != 32) {
    return InvalidArgument(std::string(function) + ": expected 32 bytes of return data, got " +
                           std::to_string(ret.size()));
  }
  ASSIGN_OR_RETURN(std::vector<Word> w, AbiWords(ret, 1, function));
  return w[0];
}
}  // namespace

StatusOr<Hash32> DecodeBytes32Return(crypto::ByteSpan ret, std::string_view function) {
  ASSIGN_OR_RETURN(Word w, OneWord(ret, function));
  return WordHash(w);
}

StatusOr<Address> DecodeAddressReturn(crypto::ByteSpan ret, std::string_view function) {
  ASSIGN_OR_RETURN(Word w, OneWord(ret, function));
  return WordAddress(w, function);
}

StatusOr<bool> DecodeBoolReturn(crypto::ByteSpan ret, std::string_view function) {
  ASSIGN_OR_RETURN(Word w, OneWord(ret, function));
  return WordBool(w, function);
}

StatusOr<U256> DecodeUintReturn(crypto::ByteSpan ret, std::string_view function) {
  ASSIGN_OR_RETURN(Word w, OneWord(ret, function));
  return WordUint(w, 256, function);
}

Hash32 RentedTopic() {
  return EventTopic("Rented(bytes32,address,uint64,uint64,uint32,uint256)");
}

StatusOr<RentedEvent> DecodeRented(const Log& log) {
  const std::string where = Tx(log);
  if (log.removed) return InvalidArgument(where + ": removed from the chain (reorganisation)");
  if (log.topics.size() != 3) {
    return InvalidArgument(where + ": Rented: expected 3 topics, got " +
                           std::to_string(log.topics.size()));
  }
  if (log.topics[0] != RentedTopic()) return InvalidArgument(where + ": topic0 is not Rented");
  if (log.data.size() != 4 * 32) {
    return InvalidArgument(where + ": Rented: expected 128 bytes of data, got " +
                           std::to_string(log.data.size()));
  }
  ASSIGN_OR_RETURN(std::vector<Word> w, AbiWords(log.data, 4, where + ": data"));
  RentedEvent e;
  e.dataset = log.topics[1];
  Word consumer{};
  std::copy(log.topics[2].bytes.begin(), log.topics[2].bytes.end(), consumer.begin());
  ASSIGN_OR_RETURN(e.consumer, WordAddress(consumer, where + ": topics[2] (consumer)"));
  // uint64 on chain, int64 in the store: block timestamps are far below 2^63.
  ASSIGN_OR_RETURN(U256 start, WordUint(w[0], 64, where + ": start"));
  ASSIGN_OR_RETURN(U256 end, WordUint(w[1], 64, where + ": end"));
  constexpr uint64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
  if (start > kMaxInt64 || end > kMaxInt64) {
    return InvalidArgument(where + ": start/end beyond int64 (" + ToDecimal(start) + ", " +
                           ToDecimal(end) + ")");
  }
  ASSIGN_OR_RETURN(U256 days, WordUint(w[2], 32, where + ": days"));
  ASSIGN_OR_RETURN(e.amount, WordUint(w[3], 256, where + ": amount"));
  e.start = static_cast<int64_t>(start);
  e.end = static_cast<int64_t>(end);
  e.days = static_cast<uint32_t>(days);
  if (e.days == 0) return InvalidArgument(where + ": days is 0");
  const int64_t length = static_cast<int64_t>(e.days) * kSecondsPerDay;  // < 2^49
  if (e.start > std::numeric_limits<int64_t>::max() - length || e.end != e.start + length) {
    return InvalidArgument(where + ": end " + std::to_string(e.end) + " is not start " +
                           std::to_string(e.start) + " + " + std::to_string(e.days) + " days");
  }
  e.block_number = log.block_number;
  e.block_hash = log.block_hash;
  e.tx_hash = log.tx_hash;
  e.log_index = log.log_index;
  return e;
}

std::string DescribeRevert(crypto::ByteSpan data) {
  if (data.empty()) return "no revert data";
  if (data.size() < 4) return UnknownRevert(data);
  std::array<uint8_t, 4> sel{};
  std::copy_n(data.begin(), 4, sel.begin());
  static constexpr std::array<const char*, 8> kNoArgs = {
      "NotOperator()",    "ContractPaused()", "ZeroDays()",  "NothingToWithdraw()",
      "TransferFailed()", "ZeroAddress()",    "ZeroPrice()", "ZeroMaxDays()"};
  for (const char* sig : kNoArgs) {
    if (sel == Selector(sig)) return data.size() == 4 ? std::string(sig) : UnknownRevert(data);
  }
  if (sel == Selector("UnknownDataset(bytes32)")) {
    if (auto w = ArgWords(data, 1)) return "UnknownDataset(" + WordHash((*w)[0]).Hex() + ")";
  } else if (sel == Selector("TooManyDays(uint32)")) {
    if (auto w = ArgWords(data, 1)) {
      if (auto max = WordUint((*w)[0], 32, "maxDays"); max.ok()) {
        return "TooManyDays(max " + ToDecimal(*max) + ")";
      }
    }
  } else if (sel == Selector("WrongPayment(uint256,uint256)")) {
    if (auto w = ArgWords(data, 2)) {
      auto expected = WordUint((*w)[0], 256, "expected");
      auto sent = WordUint((*w)[1], 256, "sent");
      if (expected.ok() && sent.ok()) {
        return "WrongPayment(expected " + FormatEther(*expected) + ", sent " + FormatEther(*sent) +
               ")";
      }
    }
  } else if (sel == Selector("Error(string)")) {
    if (auto text = DescribeErrorString(data)) return *text;
  } else if (sel == Selector("Panic(uint256)")) {
    if (auto w = ArgWords(data, 1)) {
      if (auto code = WordUint((*w)[0], 256, "code"); code.ok()) {
        return "Panic(" + ToQuantity(*code) + ")";
      }
    }
  }
  return UnknownRevert(data);
}

}  // namespace cce::eth

// Fuzz target: DecodeRented over a log made from the input (outside bytes:
// a node's eth_getLogs answer). Byte 0: topic count (low 3 bits, 0..7) and
// `removed` (bit 3); then 32 bytes per topic; the rest is the data. A decoded
// event must satisfy what the ledger relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eth/abi.h"
#include "eth/rental_market.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::eth;
  if (size < 1) return 0;
  Log log;
  const size_t topics = data[0] & 7;
  log.removed = (data[0] & 8) != 0;
  size_t at = 1;
  for (size_t i = 0; i < topics && at + 32 <= size; ++i, at += 32) {
    Hash32 h;
    std::copy(data + at, data + at + 32, h.bytes.begin());
    log.topics.push_back(h);
  }
  // Most inputs should reach the data checks: topic0 is forced to Rented's
  // when the first topic's bytes are all 0xff.
  if (!log.topics.empty() && log.topics[0] == Hash32{[] {
                               std::array<uint8_t, 32> ff{};
                               ff.fill(0xff);
                               return ff;
                             }()}) {
    log.topics[0] = RentedTopic();
  }
  log.data.assign(data + at, data + size);
  auto e = DecodeRented(log);
  if (!e.ok()) return 0;
  if (log.removed || log.topics.size() != 3 || log.data.size() != 128) std::abort();
  if (e->days == 0 || e->start < 0 || e->end != e->start + int64_t{e->days} * 86'400) std::abort();
  const cce::crypto::Bytes again =
      AbiEncoder().Uint(U256(e->start)).Uint(U256(e->end)).Uint(e->days).Uint(e->amount).Finish();
  if (again != log.data) std::abort();
  return 0;
}

// Fuzz target: a JSON-RPC answer from a node (outside bytes) through the
// envelope check and the Block, Log and Receipt parsers (rpc.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eth/rpc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::eth;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto result = ParseRpcResponse(body, 1, "fuzz");
  if (!result.ok()) return 0;
  (void)BlockFromJson(*result, "result");
  (void)ReceiptFromJson(*result, "result");
  auto log = LogFromJson(*result, "result");
  if (log.ok() && log->topics.size() > 4) std::abort();  // the parser's bound
  if (result->is_array()) {
    for (const auto& item : *result) (void)LogFromJson(item, "result[]");
  }
  return 0;
}

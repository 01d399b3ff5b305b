// libFuzzer target: the reference-dataset readers (CSV/TSV with a header,
// JSON Lines) a provider's files go through at registration, then a match of
// the same bytes as an output against the index built, and the index's
// serialized form read back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gate/fingerprint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::gate;
  static const Policy policy;
  static const std::vector<uint8_t> key(32, 7);
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const char* name = size > 0 && data[0] == '{' ? "ref.jsonl" : "ref.csv";
  ReferenceIndex::Builder builder("fuzz", cce::crypto::ByteSpan(key.data(), key.size()), policy);
  if (!builder.AddFile(name, bytes).ok()) return 0;
  auto index = builder.Finish();
  if (!index.ok()) return 0;
  Collected out;
  out.paths.push_back("out.txt");
  out.texts.push_back({"out.txt", 0, "", bytes});
  std::vector<Finding> findings;
  DetectCopies(out, {&*index}, policy, &findings);
  auto back = ReferenceIndex::Deserialize(index->Serialize(),
                                          cce::crypto::ByteSpan(key.data(), key.size()));
  if (!back.ok()) __builtin_trap();  // what Serialize wrote must read back
  return 0;
}

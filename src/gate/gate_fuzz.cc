// libFuzzer target: the whole gate scan over one hostile output file (every
// parser, decoder and detector it reaches), with small bounds so a run
// explores many inputs. Any crash, leak, hang or out-of-memory is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gate/gate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::gate;
  static const Policy* policy = [] {
    auto* p = new Policy();
    p->max_expanded_bytes = 8u << 20;
    p->max_child_bytes = 4u << 20;
    p->max_items = 2000;
    p->max_scan_millis = 5000;
    return p;
  }();
  ScanInputs in;
  in.files.push_back({"fuzz.bin", std::string(reinterpret_cast<const char*>(data), size)});
  Report r = Scan(in, *policy);
  if (r.verdict == Verdict::kHold && r.findings.empty()) __builtin_trap();  // a hold says why
  if (!(r.score >= 0 && r.score <= 1)) __builtin_trap();
  (void)ReportToJson(r).dump();
  return 0;
}

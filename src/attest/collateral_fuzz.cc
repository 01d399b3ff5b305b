// libFuzzer target for the collateral parsers (built with -DCCE_FUZZ=ON under
// clang; see docs/attestation.md): the dcap-qvl document, the PCS signed-JSON
// split and the TCB Info / QE Identity parsers. Properties: failures are
// kInvalidArgument with a message; a split body is an exact substring of the
// input and parses as JSON on its own; a loaded document's signed bytes parse
// again to the same TCB Info.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "attest/collateral.h"

namespace {

[[noreturn]] void Fail() {
  std::abort();
}

void CheckError(const cce::Status& s) {
  if (s.code() != cce::StatusCode::kInvalidArgument || s.message().empty()) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto doc = cce::attest::Collateral::FromDcapQvlJson(text, "fuzz.json");
  if (!doc.ok()) {
    CheckError(doc.status());
  } else {
    const auto again = cce::attest::ParseTcbInfo(doc->tcb_info_signed.body);
    if (!again.ok() || again->fmspc != doc->tcb_info.fmspc ||
        again->tcb_levels.size() != doc->tcb_info.tcb_levels.size()) {
      Fail();
    }
  }

  for (const char* key : {"tcbInfo", "enclaveIdentity"}) {
    const auto split = cce::attest::SplitSignedJson(text, key, "fuzz.json");
    if (!split.ok()) {
      CheckError(split.status());
      continue;
    }
    if (text.find(split->body) == std::string_view::npos) Fail();
    if (!nlohmann::json::accept(split->body)) Fail();
    const auto tcb = cce::attest::ParseTcbInfo(split->body);
    if (!tcb.ok()) CheckError(tcb.status());
    const auto qe = cce::attest::ParseQeIdentity(split->body);
    if (!qe.ok()) CheckError(qe.status());
  }
  const auto tcb = cce::attest::ParseTcbInfo(text);
  if (!tcb.ok()) CheckError(tcb.status());
  const auto qe = cce::attest::ParseQeIdentity(text);
  if (!qe.ok()) CheckError(qe.status());
  return 0;
}

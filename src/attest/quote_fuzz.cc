// libFuzzer target for the TDX quote parser and the PCK certificate DER
// walker (built with -DCCE_FUZZ=ON under clang; see src/attest/CMakeLists.txt
// and docs/attestation.md). Beyond "no crash, no sanitizer report" it checks
// what the verifier relies on: a rejected quote names an offset, an accepted
// one accounts for every byte and its signed region is the quote's prefix.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "attest/pck_cert.h"
#include "attest/quote.h"

namespace {

[[noreturn]] void Fail() {
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cce::crypto::ByteSpan bytes(data, size);
  const auto quote = cce::attest::ParseQuote(bytes);
  if (!quote.ok()) {
    if (quote.status().code() != cce::StatusCode::kInvalidArgument ||
        !quote.status().message().starts_with("quote offset ")) {
      Fail();
    }
  } else {
    const cce::attest::Quote& q = *quote;
    if (q.quote_length + q.trailing_bytes != size || q.quote_length > size) Fail();
    if (q.signed_region.size() > q.quote_length ||
        !std::equal(q.signed_region.begin(), q.signed_region.end(), data)) {
      Fail();
    }
    const size_t want_body = q.body_type == cce::attest::kBodyTypeTdx15 ? 648 : 584;
    const size_t header = q.header.version == 5 ? 54 : 48;
    if (q.signed_region.size() != header + want_body) Fail();
    if (q.body.tee_tcb_svn2.has_value() != (q.body_type == cce::attest::kBodyTypeTdx15)) Fail();
    if (q.pck_chain_pem.empty()) Fail();
  }
  const auto ext = cce::attest::ParsePckExtensions(bytes);
  if (!ext.ok() && ext.status().message().empty()) Fail();
  return 0;
}

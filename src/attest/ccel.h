// ccel: the TDX confidential-computing event log. The ACPI CCEL table says
// where the log lives; the log is the TCG crypto-agile format (a
// "Spec ID Event03" header event, then TCG_PCR_EVENT2 records) whose index
// field is the CC measurement register: 0 = MRTD, 1..4 = RTMR0..3. Replaying
// the SHA-384 digests reproduces the RTMRs a quote reports, which is what lets
// a verifier trust the individual events.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attest/quote.h"
#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

struct CcelTable {
  uint8_t revision = 0;
  std::string oem_id;   // 6 characters
  uint8_t cc_type = 0;  // 2 = Intel TDX
  uint8_t cc_subtype = 0;
  uint64_t log_area_minimum_length = 0;
  uint64_t log_area_start_address = 0;
};

// The ACPI table: signature "CCEL", length field equal to the table size
// (56), a zero byte sum.
StatusOr<CcelTable> ParseCcelTable(crypto::ByteSpan table);

inline constexpr uint32_t kEvNoAction = 3;
inline constexpr uint16_t kTpmAlgSha384 = 0x000c;

struct CcEvent {
  size_t offset = 0;  // in the log
  uint32_t mr_index = 0;
  uint32_t event_type = 0;
  std::optional<crypto::Sha384Digest> sha384;
  crypto::Bytes data;
};

struct CcEventLog {
  std::vector<std::pair<uint16_t, uint16_t>> algorithms;  // (TPM_ALG_ID, digest size)
  std::vector<CcEvent> events;                            // after the Spec ID event
  size_t used_bytes = 0;  // where the log ends; the rest is 0x00 or 0xFF fill
};

// Parses the log area. Every event must carry one digest per algorithm of the
// header, in the header's order, and SHA-384 must be one of them. The log ends
// at the first record whose index and type are all-0xFF or all-zero; the rest
// must be that fill. Errors name the offset.
StatusOr<CcEventLog> ParseCcEventLog(crypto::ByteSpan log);

// Replays the events into RTMR0..3 (each starts at 48 zero bytes; extend =
// SHA-384(RTMR || digest)). EV_NO_ACTION events are not measured. An event for
// MR index 0 (MRTD is measured at build time, never extended) or above 4 is
// an error.
StatusOr<std::array<Measurement, 4>> ReplayRtmrs(const CcEventLog& log);

// The RTMRs whose replay differs from the quote's; empty = all four match.
std::vector<std::string> CompareRtmrs(const std::array<Measurement, 4>& replayed,
                                      const TdReportBody& body);

}  // namespace cce::attest

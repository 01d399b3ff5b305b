#include "attest/ccel.h"

#include <algorithm>
#include <cstring>

#include "attest/byte_reader.h"

namespace cce::attest {
namespace {

using crypto::ByteSpan;
using internal::ByteReader;

constexpr size_t kCcelTableSize = 56;
constexpr size_t kMaxAlgorithms = 8;
constexpr size_t kMaxEventData = size_t{16} << 20;
constexpr char kSpecIdSignature[16] = {'S', 'p', 'e', 'c', ' ', 'I', 'D', ' ',
                                       'E', 'v', 'e', 'n', 't', '0', '3', '\0'};

bool AllBytes(ByteSpan s, uint8_t value) {
  return std::all_of(s.begin(), s.end(), [value](uint8_t b) { return b == value; });
}

}  // namespace

StatusOr<CcelTable> ParseCcelTable(ByteSpan table) {
  ByteReader r(table, "CCEL table");
  ASSIGN_OR_RETURN(ByteSpan sig, r.Take(4, "signature"));
  if (std::memcmp(sig.data(), "CCEL", 4) != 0) return r.Error(0, "signature", "is not 'CCEL'");
  ASSIGN_OR_RETURN(uint32_t length, r.U32("length"));
  if (length != table.size() || length < kCcelTableSize) {
    return r.Error(4, "length",
                   std::to_string(length) + " does not match the table's " +
                       std::to_string(table.size()) + " bytes (want at least 56)");
  }
  uint8_t sum = 0;
  for (uint8_t b : table) sum = static_cast<uint8_t>(sum + b);
  if (sum != 0) return r.Error(9, "checksum", "bytes do not sum to zero");
  CcelTable t;
  ASSIGN_OR_RETURN(t.revision, r.U8("revision"));
  RETURN_IF_ERROR(r.U8("checksum").status());
  ASSIGN_OR_RETURN(ByteSpan oem, r.Take(6, "OEMID"));
  t.oem_id.assign(oem.begin(), oem.end());
  RETURN_IF_ERROR(r.Take(8, "OEM table id").status());
  RETURN_IF_ERROR(r.U32("OEM revision").status());
  RETURN_IF_ERROR(r.U32("creator id").status());
  RETURN_IF_ERROR(r.U32("creator revision").status());
  ASSIGN_OR_RETURN(t.cc_type, r.U8("CC type"));
  ASSIGN_OR_RETURN(t.cc_subtype, r.U8("CC subtype"));
  RETURN_IF_ERROR(r.U16("reserved").status());
  ASSIGN_OR_RETURN(t.log_area_minimum_length, r.U64("LAML"));
  ASSIGN_OR_RETURN(t.log_area_start_address, r.U64("LASA"));
  return t;
}

StatusOr<CcEventLog> ParseCcEventLog(ByteSpan log) {
  CcEventLog out;
  ByteReader r(log, "CC event log");
  // The header: a TCG_PCClientPCREvent (SHA-1 layout) carrying the Spec ID.
  RETURN_IF_ERROR(r.U32("Spec ID event index").status());
  const size_t type_at = r.offset();
  ASSIGN_OR_RETURN(uint32_t type, r.U32("Spec ID event type"));
  if (type != kEvNoAction) {
    return r.Error(type_at, "Spec ID event type", "is not EV_NO_ACTION (3)");
  }
  RETURN_IF_ERROR(r.Take(20, "Spec ID event digest").status());
  ASSIGN_OR_RETURN(uint32_t spec_size, r.U32("Spec ID event size"));
  const size_t spec_at = r.offset();
  ASSIGN_OR_RETURN(ByteSpan spec, r.Take(spec_size, "Spec ID event"));
  ByteReader s(spec, "CC event log", spec_at);
  ASSIGN_OR_RETURN(ByteSpan signature, s.Take(16, "Spec ID signature"));
  if (std::memcmp(signature.data(), kSpecIdSignature, 16) != 0) {
    return s.Error(spec_at, "Spec ID signature", "is not 'Spec ID Event03'");
  }
  RETURN_IF_ERROR(s.U32("platform class").status());
  RETURN_IF_ERROR(s.Take(3, "spec version and errata").status());
  RETURN_IF_ERROR(s.U8("uintn size").status());
  const size_t count_at = s.offset();
  ASSIGN_OR_RETURN(uint32_t algorithm_count, s.U32("number of algorithms"));
  if (algorithm_count == 0 || algorithm_count > kMaxAlgorithms) {
    return s.Error(count_at, "number of algorithms",
                   std::to_string(algorithm_count) + " is not in 1..8");
  }
  bool have_sha384 = false;
  for (uint32_t i = 0; i < algorithm_count; ++i) {
    ASSIGN_OR_RETURN(uint16_t alg, s.U16("algorithm id"));
    const size_t size_at = s.offset();
    ASSIGN_OR_RETURN(uint16_t size, s.U16("digest size"));
    if (size == 0 || size > 64) return s.Error(size_at, "digest size", "is not in 1..64");
    if (alg == kTpmAlgSha384) {
      if (size != 48) return s.Error(size_at, "digest size", "SHA-384 digests are 48 bytes");
      have_sha384 = true;
    }
    out.algorithms.emplace_back(alg, size);
  }
  if (!have_sha384) return s.Error(count_at, "algorithms", "SHA-384 (0x000c) is not among them");
  ASSIGN_OR_RETURN(uint8_t vendor_size, s.U8("vendor info size"));
  RETURN_IF_ERROR(s.Take(vendor_size, "vendor info").status());
  if (s.remaining() != 0) {
    return s.Error(s.offset(), "Spec ID event", "has bytes after the vendor info");
  }

  while (r.remaining() > 0) {
    const size_t at = r.offset();
    // The end: all-0xFF or all-zero index and type, and nothing but fill after.
    if (r.remaining() >= 8) {
      const ByteSpan head = log.subspan(at, 8);
      for (uint8_t fill : {uint8_t{0xff}, uint8_t{0x00}}) {
        if (AllBytes(head, fill)) {
          if (!AllBytes(log.subspan(at), fill)) {
            return r.Error(at, "end of log", "fill is followed by other bytes");
          }
          out.used_bytes = at;
          return out;
        }
      }
    } else if (AllBytes(log.subspan(at), 0xff) || AllBytes(log.subspan(at), 0x00)) {
      out.used_bytes = at;
      return out;
    }
    CcEvent e;
    e.offset = at;
    ASSIGN_OR_RETURN(e.mr_index, r.U32("event MR index"));
    ASSIGN_OR_RETURN(e.event_type, r.U32("event type"));
    const size_t digests_at = r.offset();
    ASSIGN_OR_RETURN(uint32_t count, r.U32("digest count"));
    if (count != out.algorithms.size()) {
      return r.Error(digests_at, "digest count",
                     std::to_string(count) + " does not match the header's " +
                         std::to_string(out.algorithms.size()) + " algorithms");
    }
    for (const auto& [alg, size] : out.algorithms) {
      const size_t alg_at = r.offset();
      ASSIGN_OR_RETURN(uint16_t id, r.U16("digest algorithm"));
      if (id != alg) {
        return r.Error(alg_at, "digest algorithm",
                       std::to_string(id) + " is not the header's " + std::to_string(alg));
      }
      ASSIGN_OR_RETURN(ByteSpan digest, r.Take(size, "digest"));
      if (alg == kTpmAlgSha384) {
        crypto::Sha384Digest d{};
        std::copy(digest.begin(), digest.end(), d.begin());
        e.sha384 = d;
      }
    }
    const size_t size_at = r.offset();
    ASSIGN_OR_RETURN(uint32_t data_size, r.U32("event data size"));
    if (data_size > kMaxEventData) {
      return r.Error(size_at, "event data size", "larger than 16 MiB");
    }
    ASSIGN_OR_RETURN(ByteSpan data, r.Take(data_size, "event data"));
    e.data.assign(data.begin(), data.end());
    out.events.push_back(std::move(e));
  }
  out.used_bytes = log.size();
  return out;
}

StatusOr<std::array<Measurement, 4>> ReplayRtmrs(const CcEventLog& log) {
  std::array<Measurement, 4> rtmr{};
  for (const CcEvent& e : log.events) {
    if (e.event_type == kEvNoAction) continue;
    if (e.mr_index < 1 || e.mr_index > 4) {
      return InvalidArgument("CC event log offset " + std::to_string(e.offset) +
                             ": event MR index " + std::to_string(e.mr_index) +
                             " is not an RTMR (want 1..4 = RTMR0..3)");
    }
    if (!e.sha384.has_value()) {
      return InvalidArgument("CC event log offset " + std::to_string(e.offset) +
                             ": no SHA-384 digest");
    }
    Measurement& m = rtmr[e.mr_index - 1];
    crypto::Bytes buf(m.begin(), m.end());
    buf.insert(buf.end(), e.sha384->begin(), e.sha384->end());
    m = crypto::Sha384(buf);
  }
  return rtmr;
}

std::vector<std::string> CompareRtmrs(const std::array<Measurement, 4>& replayed,
                                      const TdReportBody& body) {
  std::vector<std::string> out;
  for (size_t i = 0; i < 4; ++i) {
    if (replayed[i] != body.rtmr[i]) {
      out.push_back("RTMR" + std::to_string(i) + ": event log replays to " +
                    crypto::ToHex(replayed[i]) + ", the quote has " + crypto::ToHex(body.rtmr[i]));
    }
  }
  return out;
}

}  // namespace cce::attest

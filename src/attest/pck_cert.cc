#include "attest/pck_cert.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cce::attest {
namespace {

using crypto::ByteSpan;

constexpr uint8_t kTagBoolean = 0x01;
constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagOctetString = 0x04;
constexpr uint8_t kTagOid = 0x06;
constexpr uint8_t kTagEnumerated = 0x0a;
constexpr uint8_t kTagSequence = 0x30;
constexpr uint8_t kTagVersion = 0xa0;     // [0] EXPLICIT
constexpr uint8_t kTagIssuerUid = 0x81;   // [1] IMPLICIT
constexpr uint8_t kTagSubjectUid = 0x82;  // [2] IMPLICIT
constexpr uint8_t kTagExtensions = 0xa3;  // [3] EXPLICIT

// 1.2.840.113741.1.13.1 (Intel SGX extensions).
constexpr uint8_t kSgxOid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
constexpr size_t kSgxOidSize = sizeof(kSgxOid);

struct Tlv {
  uint8_t tag = 0;
  ByteSpan value;
  size_t offset = 0;  // of the tag byte, in the certificate
};

// A strict DER reader over one constructed value's contents: definite,
// minimal lengths; low tag numbers only.
class DerReader {
 public:
  DerReader(ByteSpan data, size_t base) : data_(data), base_(base) {}

  bool done() const { return pos_ == data_.size(); }
  std::optional<uint8_t> PeekTag() const {
    if (done()) return std::nullopt;
    return data_[pos_];
  }

  StatusOr<Tlv> Next(std::string_view what) {
    const size_t at = base_ + pos_;
    if (data_.size() - pos_ < 2) return Error(at, what, "truncated TLV");
    Tlv t;
    t.offset = at;
    t.tag = data_[pos_];
    if ((t.tag & 0x1f) == 0x1f) return Error(at, what, "high tag numbers are not expected");
    size_t p = pos_ + 1;
    size_t len = data_[p++];
    if (len == 0x80) return Error(at, what, "indefinite length is not DER");
    if (len > 0x80) {
      const size_t n = len & 0x7f;
      if (n > 4) return Error(at, what, "length field too long");
      if (data_.size() - p < n) return Error(at, what, "truncated length");
      if (data_[p] == 0) return Error(at, what, "non-minimal length");
      len = 0;
      for (size_t i = 0; i < n; ++i) len = (len << 8) | data_[p++];
      if (len < 0x80) return Error(at, what, "non-minimal length");
    }
    if (data_.size() - p < len) {
      return Error(at, what,
                   "length " + std::to_string(len) + " runs past the end (" +
                       std::to_string(data_.size() - p) + " bytes left)");
    }
    t.value = data_.subspan(p, len);
    pos_ = p + len;
    return t;
  }

  StatusOr<Tlv> Expect(uint8_t tag, std::string_view what) {
    ASSIGN_OR_RETURN(Tlv t, Next(what));
    if (t.tag != tag) {
      return Error(t.offset, what,
                   "tag 0x" + crypto::ToHex(ByteSpan(&t.tag, 1)) + ", want 0x" +
                       crypto::ToHex(ByteSpan(&tag, 1)));
    }
    return t;
  }

  static Status Error(size_t at, std::string_view what, std::string_view message) {
    return InvalidArgument("PCK certificate DER offset " + std::to_string(at) + ": " +
                           std::string(what) + ": " + std::string(message));
  }

 private:
  ByteSpan data_;
  size_t base_;
  size_t pos_ = 0;
};

DerReader Inside(const Tlv& t, ByteSpan whole) {
  // Content starts where the value span starts; offsets stay absolute.
  return {t.value, static_cast<size_t>(t.value.data() - whole.data())};
}

// A non-negative DER INTEGER / ENUMERATED up to max.
StatusOr<uint32_t> SmallUnsigned(const Tlv& t, std::string_view what, uint32_t max) {
  const ByteSpan v = t.value;
  if (v.empty()) return DerReader::Error(t.offset, what, "empty integer");
  if ((v[0] & 0x80) != 0) return DerReader::Error(t.offset, what, "negative integer");
  if (v.size() > 1 && v[0] == 0 && (v[1] & 0x80) == 0) {
    return DerReader::Error(t.offset, what, "non-minimal integer");
  }
  uint64_t n = 0;
  for (uint8_t b : v) {
    n = (n << 8) | b;
    if (n > max) break;
  }
  if (v.size() > 5 || n > max) {
    return DerReader::Error(t.offset, what, "value out of range (max " + std::to_string(max) + ")");
  }
  return static_cast<uint32_t>(n);
}

template <size_t N>
StatusOr<std::array<uint8_t, N>> FixedOctets(const Tlv& t, std::string_view what) {
  if (t.tag != kTagOctetString) return DerReader::Error(t.offset, what, "not an OCTET STRING");
  if (t.value.size() != N) {
    return DerReader::Error(t.offset, what,
                            std::to_string(t.value.size()) + " bytes, want " + std::to_string(N));
  }
  std::array<uint8_t, N> out{};
  std::copy(t.value.begin(), t.value.end(), out.begin());
  return out;
}

// The sub-arc of an OID under the SGX extension OID, e.g. {2, 17} for
// 1.2.840.113741.1.13.1.2.17; nullopt if it is not under it.
std::optional<std::vector<uint8_t>> SgxSubArcs(ByteSpan oid) {
  if (oid.size() <= kSgxOidSize || !std::equal(kSgxOid, kSgxOid + kSgxOidSize, oid.begin())) {
    return std::nullopt;
  }
  std::vector<uint8_t> arcs(oid.begin() + kSgxOidSize, oid.end());
  // Every arc we know is below 128, i.e. one byte; a multi-byte arc is one we
  // do not know.
  if (std::any_of(arcs.begin(), arcs.end(), [](uint8_t b) { return (b & 0x80) != 0; })) {
    return std::nullopt;
  }
  return arcs;
}

Status ParseTcb(const Tlv& tcb_seq, ByteSpan whole, PckExtensions& out) {
  DerReader r = Inside(tcb_seq, whole);
  std::array<bool, 18> seen{};
  while (!r.done()) {
    ASSIGN_OR_RETURN(Tlv entry, r.Expect(kTagSequence, "SGX TCB entry"));
    DerReader e = Inside(entry, whole);
    ASSIGN_OR_RETURN(Tlv oid, e.Expect(kTagOid, "SGX TCB entry OID"));
    ASSIGN_OR_RETURN(Tlv value, e.Next("SGX TCB entry value"));
    if (!e.done()) return DerReader::Error(entry.offset, "SGX TCB entry", "extra elements");
    const auto arcs = SgxSubArcs(oid.value);
    if (!arcs.has_value() || arcs->size() != 2 || (*arcs)[0] != 2 || (*arcs)[1] < 1 ||
        (*arcs)[1] > 18) {
      continue;  // not one of ours: ignore, as Intel may add entries
    }
    const size_t index = (*arcs)[1] - 1u;
    if (seen[index]) {
      return DerReader::Error(entry.offset, "SGX TCB entry",
                              "component " + std::to_string(index + 1) + " appears twice");
    }
    seen[index] = true;
    if (index < 16) {
      if (value.tag != kTagInteger) {
        return DerReader::Error(value.offset, "SGX TCB component", "not an INTEGER");
      }
      ASSIGN_OR_RETURN(uint32_t svn, SmallUnsigned(value, "SGX TCB component SVN", 255));
      out.sgx_tcb_components[index] = static_cast<uint8_t>(svn);
    } else if (index == 16) {
      if (value.tag != kTagInteger)
        return DerReader::Error(value.offset, "PCESVN", "not an INTEGER");
      ASSIGN_OR_RETURN(uint32_t svn, SmallUnsigned(value, "PCESVN", 65535));
      out.pce_svn = static_cast<uint16_t>(svn);
    } else {
      ASSIGN_OR_RETURN(out.cpu_svn, FixedOctets<16>(value, "CPUSVN"));
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) {
      return DerReader::Error(
          tcb_seq.offset, "SGX TCB",
          "entry 1.2.840.113741.1.13.1.2." + std::to_string(i + 1) + " is missing");
    }
  }
  return Status::Ok();
}

Status ParseSgxExtension(const Tlv& octets, ByteSpan whole, PckExtensions& out) {
  DerReader outer = Inside(octets, whole);
  ASSIGN_OR_RETURN(Tlv top, outer.Expect(kTagSequence, "SGX extension"));
  if (!outer.done()) return DerReader::Error(top.offset, "SGX extension", "trailing bytes");
  DerReader r = Inside(top, whole);
  // 1 PPID, 2 TCB, 3 PCE-ID, 4 FMSPC, 5 SGX type: required, once each.
  std::array<bool, 5> seen{};
  static constexpr const char* kNames[5] = {"PPID", "TCB", "PCE-ID", "FMSPC", "SGX Type"};
  while (!r.done()) {
    ASSIGN_OR_RETURN(Tlv entry, r.Expect(kTagSequence, "SGX extension entry"));
    DerReader e = Inside(entry, whole);
    ASSIGN_OR_RETURN(Tlv oid, e.Expect(kTagOid, "SGX extension entry OID"));
    ASSIGN_OR_RETURN(Tlv value, e.Next("SGX extension entry value"));
    if (!e.done()) return DerReader::Error(entry.offset, "SGX extension entry", "extra elements");
    const auto arcs = SgxSubArcs(oid.value);
    if (!arcs.has_value() || arcs->size() != 1 || (*arcs)[0] < 1 || (*arcs)[0] > 5) continue;
    const size_t index = (*arcs)[0] - 1u;
    if (seen[index]) {
      return DerReader::Error(entry.offset, kNames[index], "appears twice");
    }
    seen[index] = true;
    switch (index) {
      case 0: {
        ASSIGN_OR_RETURN(out.ppid, FixedOctets<16>(value, "PPID"));
        break;
      }
      case 1:
        if (value.tag != kTagSequence)
          return DerReader::Error(value.offset, "TCB", "not a SEQUENCE");
        RETURN_IF_ERROR(ParseTcb(value, whole, out));
        break;
      case 2: {
        ASSIGN_OR_RETURN(out.pce_id, FixedOctets<2>(value, "PCE-ID"));
        break;
      }
      case 3: {
        ASSIGN_OR_RETURN(out.fmspc, FixedOctets<6>(value, "FMSPC"));
        break;
      }
      default: {
        if (value.tag != kTagEnumerated) {
          return DerReader::Error(value.offset, "SGX Type", "not ENUMERATED");
        }
        ASSIGN_OR_RETURN(out.sgx_type, SmallUnsigned(value, "SGX Type", 255));
        break;
      }
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) {
    if (!seen[i]) return DerReader::Error(top.offset, kNames[i], "is missing");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<PckExtensions> ParsePckExtensions(ByteSpan der) {
  DerReader top(der, 0);
  ASSIGN_OR_RETURN(Tlv cert, top.Expect(kTagSequence, "Certificate"));
  if (!top.done()) return DerReader::Error(cert.offset, "Certificate", "trailing bytes");
  DerReader c = Inside(cert, der);
  ASSIGN_OR_RETURN(Tlv tbs, c.Expect(kTagSequence, "TBSCertificate"));
  DerReader t = Inside(tbs, der);
  if (t.PeekTag() == kTagVersion) RETURN_IF_ERROR(t.Next("version").status());
  RETURN_IF_ERROR(t.Expect(kTagInteger, "serialNumber").status());
  RETURN_IF_ERROR(t.Expect(kTagSequence, "signature").status());
  RETURN_IF_ERROR(t.Expect(kTagSequence, "issuer").status());
  RETURN_IF_ERROR(t.Expect(kTagSequence, "validity").status());
  RETURN_IF_ERROR(t.Expect(kTagSequence, "subject").status());
  RETURN_IF_ERROR(t.Expect(kTagSequence, "subjectPublicKeyInfo").status());
  std::optional<PckExtensions> found;
  while (!t.done()) {
    ASSIGN_OR_RETURN(Tlv field, t.Next("TBSCertificate field"));
    if (field.tag == kTagIssuerUid || field.tag == kTagSubjectUid) continue;
    if (field.tag != kTagExtensions) {
      return DerReader::Error(field.offset, "TBSCertificate field", "unexpected tag");
    }
    DerReader x = Inside(field, der);
    ASSIGN_OR_RETURN(Tlv list, x.Expect(kTagSequence, "extensions"));
    DerReader l = Inside(list, der);
    while (!l.done()) {
      ASSIGN_OR_RETURN(Tlv ext, l.Expect(kTagSequence, "extension"));
      DerReader e = Inside(ext, der);
      ASSIGN_OR_RETURN(Tlv oid, e.Expect(kTagOid, "extension OID"));
      if (e.PeekTag() == kTagBoolean) RETURN_IF_ERROR(e.Next("extension critical").status());
      ASSIGN_OR_RETURN(Tlv value, e.Expect(kTagOctetString, "extension value"));
      if (!e.done()) return DerReader::Error(ext.offset, "extension", "extra elements");
      if (oid.value.size() != kSgxOidSize ||
          !std::equal(kSgxOid, kSgxOid + kSgxOidSize, oid.value.begin())) {
        continue;
      }
      if (found.has_value()) {
        return DerReader::Error(ext.offset, "SGX extension", "appears twice");
      }
      PckExtensions out;
      RETURN_IF_ERROR(ParseSgxExtension(value, der, out));
      found = out;
    }
  }
  if (!found.has_value()) {
    return InvalidArgument("PCK certificate: no Intel SGX extension (OID 1.2.840.113741.1.13.1)");
  }
  return *found;
}

}  // namespace cce::attest

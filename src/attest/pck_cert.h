// pck_cert: the Intel SGX extensions of a PCK certificate (OID
// 1.2.840.113741.1.13.1): the platform's TCB (16 SGX component SVNs, PCESVN,
// CPUSVN), PCE id and FMSPC, read with a strict DER walker. These are what
// the TCB Info is matched against.
#pragma once

#include <array>
#include <cstdint>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::attest {

struct PckExtensions {
  std::array<uint8_t, 16> ppid{};
  std::array<uint8_t, 16> sgx_tcb_components{};  // TCB comp01..comp16 SVNs
  uint16_t pce_svn = 0;
  std::array<uint8_t, 16> cpu_svn{};
  std::array<uint8_t, 2> pce_id{};
  std::array<uint8_t, 6> fmspc{};
  uint32_t sgx_type = 0;  // 0 Standard, 1 Scalable, 2 Scalable with integrity
};

// Reads the SGX extension from a DER certificate. Errors (kInvalidArgument)
// name what is missing or malformed: no extension, the extension twice, a
// missing or repeated required field, a value out of range, non-DER encoding.
StatusOr<PckExtensions> ParsePckExtensions(crypto::ByteSpan certificate_der);

}  // namespace cce::attest

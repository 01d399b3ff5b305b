# Build-time generator (cmake -P): embeds the committed contract build
# (contracts/build/RentalMarket.json) into a C++ source, so the binary deploys
# exactly the bytecode that was reviewed and committed.
#   cmake -DIN=RentalMarket.json -DOUT=rental_market_bytecode.cc -P embed_contract.cmake
if(NOT EXISTS "${IN}")
  message(FATAL_ERROR "${IN}: missing (run `node scripts/compile-contracts.mjs`)")
endif()
file(READ "${IN}" json)

function(embed_hex key symbol var)
  string(JSON hex ERROR_VARIABLE err GET "${json}" "${key}")
  if(err)
    message(FATAL_ERROR "${IN}: ${key}: ${err}")
  endif()
  string(TOLOWER "${hex}" hex)
  if(NOT hex MATCHES "^0x([0-9a-f][0-9a-f])+$")
    message(FATAL_ERROR "${IN}: ${key}: expected \"0x\" and an even number of hex digits")
  endif()
  string(SUBSTRING "${hex}" 2 -1 hex)
  string(LENGTH "${hex}" digits)
  math(EXPR size "${digits} / 2")
  # One byte per initializer (a string literal this long trips -Woverlength-strings).
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(${var} "extern const uint8_t ${symbol}[] = {${bytes}};\nextern const size_t ${symbol}Size = ${size};\n" PARENT_SCOPE)
endfunction()

embed_hex(bytecode kRentalMarketBytecode creation)
embed_hex(deployedBytecode kRentalMarketDeployedBytecode runtime)
string(JSON compiler ERROR_VARIABLE err GET "${json}" compiler)
if(err OR NOT compiler MATCHES "^[0-9A-Za-z.+-]+$")
  message(FATAL_ERROR "${IN}: compiler: expected a version string")
endif()

set(content "// Generated from contracts/build/RentalMarket.json by src/eth/embed_contract.cmake.
// Do not edit.
#include <cstddef>
#include <cstdint>

namespace cce::eth::contract_build {
${creation}${runtime}extern const char kRentalMarketCompiler[] = \"${compiler}\";
}  // namespace cce::eth::contract_build
")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()

// jwe_tool: drives src/crypto/jwe from the JOSE interop test (interop.cjs),
// over stdin/stdout, one JSON or JWE per line.
//
//   jwe_tool encrypt   stdin: {"jwk":{...},"plaintext_hex":"..","kid":"..",
//                              "apu_hex":"..","apv_hex":".."}
//                      stdout: the compact JWE
//   jwe_tool decrypt P-256|X25519
//                      stdout line 1: the public JWK of a fresh ephemeral key;
//                      then for each compact JWE read from stdin, one line
//                      {"ok":true,"plaintext_hex":..,"kid":..,"apu_hex":..,
//                       "apv_hex":..} or {"ok":false,"code":"data loss","error":".."}
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "crypto/jwe.h"

namespace {

using cce::Status;
using cce::StatusOr;
using Json = nlohmann::json;
namespace crypto = cce::crypto;

StatusOr<crypto::Bytes> HexField(const Json& request, const char* name) {
  if (!request.contains(name)) return crypto::Bytes{};
  auto bytes = crypto::FromHex(request.at(name).get<std::string>());
  if (!bytes.ok()) return bytes.status().WithContext(name);
  return bytes;
}

Status Encrypt() {
  std::string line;
  if (!std::getline(std::cin, line)) return cce::InvalidArgument("encrypt: no request on stdin");
  const Json request = Json::parse(line);
  ASSIGN_OR_RETURN(crypto::JwkPublicKey to,
                   crypto::JwkPublicKey::FromJwk(request.at("jwk").dump()));
  ASSIGN_OR_RETURN(crypto::Bytes plaintext, HexField(request, "plaintext_hex"));
  crypto::JweOptions opts;
  opts.kid = request.value("kid", "");
  ASSIGN_OR_RETURN(opts.apu, HexField(request, "apu_hex"));
  ASSIGN_OR_RETURN(opts.apv, HexField(request, "apv_hex"));
  ASSIGN_OR_RETURN(std::string jwe, crypto::JweEncrypt(to, plaintext, opts));
  std::cout << jwe << std::endl;
  return Status::Ok();
}

Status Decrypt(std::string_view curve_name) {
  crypto::EcdhCurve curve;
  if (curve_name == "P-256") {
    curve = crypto::EcdhCurve::kP256;
  } else if (curve_name == "X25519") {
    curve = crypto::EcdhCurve::kX25519;
  } else {
    return cce::InvalidArgument("decrypt: curve must be P-256 or X25519");
  }
  ASSIGN_OR_RETURN(crypto::EphemeralKey key, crypto::EphemeralKey::Generate(curve));
  std::cout << key.PublicJwk() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    crypto::JweOptions header;
    auto plaintext = crypto::JweDecrypt(key, line, &header);
    Json reply;
    if (plaintext.ok()) {
      reply = {{"ok", true},
               {"plaintext_hex", crypto::ToHex(plaintext->span())},
               {"kid", header.kid},
               {"apu_hex", crypto::ToHex(header.apu)},
               {"apv_hex", crypto::ToHex(header.apv)}};
    } else {
      reply = {{"ok", false},
               {"code", std::string(cce::StatusCodeName(plaintext.status().code()))},
               {"error", plaintext.status().message()}};
    }
    std::cout << reply.dump() << std::endl;
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "";
  Status status;
  try {
    if (mode == "encrypt" && argc == 2) {
      status = Encrypt();
    } else if (mode == "decrypt" && argc == 3) {
      status = Decrypt(argv[2]);
    } else {
      std::cerr << "usage: jwe_tool encrypt | jwe_tool decrypt P-256|X25519\n";
      return 2;
    }
  } catch (const std::exception& e) {
    status = cce::InvalidArgument(std::string("jwe_tool: ") + e.what());
  }
  if (!status.ok()) {
    std::cerr << "jwe_tool: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}

// libFuzzer target: a script job's request body as the plane reads it --
// the strict JSON decode, then the script name check and the base64 decode
// (script_image.h) -- and the layer made from what passed. Properties: a
// decoded script re-encodes to exactly the text given (one encoding per
// script), is never over the limit, and its layer is whole 512-byte blocks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/wire.h"
#include "plane/script_image.h"

namespace {

std::string Encode(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       static_cast<uint8_t>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(n >> k) & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t n = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (rest == 2) n |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

void Check(const std::string& text, size_t limit) {
  using cce::plane::script_image::DecodeBase64;
  auto decoded = DecodeBase64(text, limit, "body.script.content_base64");
  if (!decoded.ok()) return;
  if (decoded->size() > limit || Encode(*decoded) != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // The raw bytes as base64 text, with a small limit too (the length rule).
  Check(input, 1 << 20);
  Check(input, 7);
  auto request =
      cce::api::Parse<cce::api::ScriptJobRequest>(input, cce::api::Decode::kStrict, "body");
  if (!request.ok()) return 0;
  if (!cce::plane::script_image::CheckScriptName(request->script.name).ok()) return 0;
  auto content = cce::plane::script_image::DecodeBase64(request->script.content_base64, 1 << 20,
                                                        "body.script.content_base64");
  if (!content.ok()) return 0;
  const std::string tar =
      cce::plane::script_image::OneFileTar("job", request->script.name, *content);
  if (tar.size() % 512 != 0 || tar.size() < 512 + 1024 + content->size()) std::abort();
  if (!cce::plane::script_image::GzipBytes(tar).ok()) std::abort();
  return 0;
}

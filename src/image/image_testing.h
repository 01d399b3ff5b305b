// Test support for image and layer tests (library cce_image_testing, linked
// by tests only): pax tars built member by member with libarchive's writer
// (every kind a layer may hold, including the ones an unpacker must refuse),
// gzip streams, temp dirs and Status expectations.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/temp_dir_testing.h"

namespace cce::image::testing {

// A fresh directory under $TMPDIR, removed with everything in it on
// destruction (base/temp_dir_testing.h; the prefix names the test).
using TempDir = ::cce::testing::TempDir;

// Writes `data` to `p` (truncating), creating missing parent directories.
void WriteFile(const std::filesystem::path& p, const std::string& data);

// `n` bytes from a seeded std::mt19937_64: the same seed gives the same bytes.
std::string RandomData(size_t n, uint64_t seed);

// One tar member. Built with the functions below; tests change fields
// (uid, xattrs, kind) afterwards when they need to.
struct TarMember {
  enum class Kind { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo };
  std::string name;  // written as given: absolute and ".." names too
  Kind kind = Kind::kFile;
  std::string data = "";  // kFile only
  std::string link = "";  // target of kSymlink / kHardlink
  mode_t perm = 0644;
  int64_t uid = 0;                                 // written as the uid and the gid
  std::map<std::string, std::string> xattrs = {};  // pax SCHILY.xattr records
};
TarMember File(std::string name, std::string data, mode_t perm = 0644);
TarMember Dir(std::string name, mode_t perm = 0755);
TarMember Symlink(std::string name, std::string target);   // perm 0777
TarMember HardLink(std::string name, std::string target);  // perm 0644
// A device or fifo (kChar is 1:3, kBlock is 7:0), perm 0600.
TarMember Node(std::string name, TarMember::Kind kind);

// A pax (restricted) tar of the members, in order, mtime 0, optionally
// gzip-compressed. The same members give the same bytes. A member libarchive
// refuses fails the current test (EXPECT) naming the member.
std::string MakeTar(const std::vector<TarMember>& members, bool gzip = false);

// gzip of `data` (one raw member through libarchive's writer).
std::string Gzip(const std::string& data);

// The lower-case hex sha256 of `data` (its blob file name).
std::string Hex(const std::string& data);

// An OCI descriptor {mediaType, digest, size} of `data`.
nlohmann::json DescriptorJson(const std::string& media_type, const std::string& data);

// Expects `s` to fail with `code` and a message containing every needle.
void ExpectError(const Status& s, StatusCode code, const std::vector<std::string>& needles);
template <typename T>
void ExpectError(const StatusOr<T>& s, StatusCode code, const std::vector<std::string>& needles) {
  ExpectError(s.status(), code, needles);
}

}  // namespace cce::image::testing

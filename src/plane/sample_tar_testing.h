// Test-only: tars built in memory with libarchive (pax), for the sample
// tests (sample_tar_test.cc, samples_test.cc). Link PkgConfig::LIBARCHIVE.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cce::plane::testing {

struct TarMember {
  enum class Kind { kFile, kDir, kSymlink, kHardlink, kFifo, kCharDevice };
  std::string path;
  std::string data;  // kFile: the bytes; kSymlink / kHardlink: the target
  Kind kind = Kind::kFile;
};

inline TarMember TarFile(std::string path, std::string data) {
  return {std::move(path), std::move(data), TarMember::Kind::kFile};
}
inline TarMember TarDir(std::string path) {
  return {std::move(path), "", TarMember::Kind::kDir};
}

inline std::string MakeTar(const std::vector<TarMember>& members) {
  size_t capacity = 1 << 20;
  for (const auto& m : members) capacity += m.data.size() + 4096;
  std::string out(capacity, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_per_block(a, 0);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.path.c_str());
    archive_entry_set_perm(e, 0644);
    switch (m.kind) {
      case TarMember::Kind::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
        break;
      case TarMember::Kind::kDir: archive_entry_set_filetype(e, AE_IFDIR); break;
      case TarMember::Kind::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m.data.c_str());
        break;
      case TarMember::Kind::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.data.c_str());
        break;
      case TarMember::Kind::kFifo: archive_entry_set_filetype(e, AE_IFIFO); break;
      case TarMember::Kind::kCharDevice:
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdev(e, 0x0103);  // 1:3, /dev/null
        break;
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (m.kind == TarMember::Kind::kFile && !m.data.empty()) {
      EXPECT_EQ(archive_write_data(a, m.data.data(), m.data.size()),
                static_cast<la_ssize_t>(m.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

}  // namespace cce::plane::testing

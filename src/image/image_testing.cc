#include "image/image_testing.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include "image/blob_store.h"

namespace cce::image::testing {
namespace {

namespace fs = std::filesystem;

la_ssize_t AppendToString(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

void WriteFile(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

std::string RandomData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TarMember File(std::string name, std::string data, mode_t perm) {
  return {std::move(name), TarMember::Kind::kFile, std::move(data), "", perm};
}
TarMember Dir(std::string name, mode_t perm) {
  return {std::move(name), TarMember::Kind::kDir, "", "", perm};
}
TarMember Symlink(std::string name, std::string target) {
  return {std::move(name), TarMember::Kind::kSymlink, "", std::move(target), 0777};
}
TarMember HardLink(std::string name, std::string target) {
  return {std::move(name), TarMember::Kind::kHardlink, "", std::move(target), 0644};
}
TarMember Node(std::string name, TarMember::Kind kind) {
  return {std::move(name), kind, "", "", 0600};
}

std::string MakeTar(const std::vector<TarMember>& members, bool gzip) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  for (const TarMember& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, m.uid);
    archive_entry_set_gid(e, m.uid);
    archive_entry_set_perm(e, m.perm);
    for (const auto& [key, value] : m.xattrs) {
      archive_entry_xattr_add_entry(e, key.c_str(), value.data(), value.size());
    }
    switch (m.kind) {
      case TarMember::Kind::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
        break;
      case TarMember::Kind::kDir: archive_entry_set_filetype(e, AE_IFDIR); break;
      case TarMember::Kind::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, m.link.c_str());
        break;
      case TarMember::Kind::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, m.link.c_str());
        break;
      case TarMember::Kind::kChar:
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdev(e, makedev(1, 3));
        break;
      case TarMember::Kind::kBlock:
        archive_entry_set_filetype(e, AE_IFBLK);
        archive_entry_set_rdev(e, makedev(7, 0));
        break;
      case TarMember::Kind::kFifo: archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << m.name << ": " << archive_error_string(a);
    if (m.kind == TarMember::Kind::kFile && !m.data.empty()) {
      EXPECT_EQ(archive_write_data(a, m.data.data(), m.data.size()),
                static_cast<la_ssize_t>(m.data.size()))
          << m.name;
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string Gzip(const std::string& data) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
  EXPECT_EQ(archive_write_data(a, data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string Hex(const std::string& data) {
  return std::string(Digest::Of(data).hex());
}

nlohmann::json DescriptorJson(const std::string& media_type, const std::string& data) {
  return nlohmann::json{
      {"mediaType", media_type}, {"digest", Digest::Of(data).str()}, {"size", data.size()}};
}

void ExpectError(const Status& s, StatusCode code, const std::vector<std::string>& needles) {
  ASSERT_FALSE(s.ok()) << "expected an error";
  EXPECT_EQ(s.code(), code) << s.message();
  for (const std::string& n : needles) {
    EXPECT_NE(s.message().find(n), std::string::npos)
        << "message: " << s.message() << "\nexpected to contain: " << n;
  }
}

}  // namespace cce::image::testing

// The builders are what the unpacker's refusal tests feed in: if a member
// kind, mode, owner or xattr silently went missing from the tar, those tests
// would pass without testing anything. So each field is read back here.
#include "image/image_testing.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cce::image::testing {
namespace {

struct ReadMember {
  std::string name;
  mode_t type = 0;
  mode_t perm = 0;
  int64_t uid = -1;
  int64_t gid = -1;
  std::string data = "";
  std::string symlink = "";
  std::string hardlink = "";
  dev_t rdev = 0;
  std::map<std::string, std::string> xattrs = {};
};

// Reads `bytes` (tar, maybe gzip) back with libarchive's reader.
std::vector<ReadMember> ReadTar(const std::string& bytes, bool expect_gzip) {
  std::vector<ReadMember> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_gzip(a);
  EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    ReadMember m;
    m.name = archive_entry_pathname(e);
    m.type = archive_entry_filetype(e);
    m.perm = archive_entry_perm(e);
    m.uid = archive_entry_uid(e);
    m.gid = archive_entry_gid(e);
    if (const char* s = archive_entry_symlink(e)) m.symlink = s;
    if (const char* h = archive_entry_hardlink(e)) m.hardlink = h;
    m.rdev = archive_entry_rdev(e);
    archive_entry_xattr_reset(e);
    const char* key = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
      m.xattrs[key] = std::string(static_cast<const char*>(value), size);
    }
    char buf[4096];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
      m.data.append(buf, static_cast<size_t>(n));
    }
    out.push_back(std::move(m));
  }
  EXPECT_EQ(archive_filter_code(a, 0), expect_gzip ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_NONE);
  archive_read_free(a);
  return out;
}

TEST(MakeTar, WritesEveryMemberKindModeOwnerAndXattr) {
  TarMember owned = File("home/app/file", "data\n", 04755);
  owned.uid = 1000;
  owned.xattrs = {{"user.note", "hello"}, {"security.capability", std::string("\x01\x00\x02", 3)}};
  const std::string tar =
      MakeTar({Dir("etc/", 0700), owned, Symlink("bin", "/usr/bin"), HardLink("hard", "etc/f"),
               Node("dev/null", TarMember::Kind::kChar), Node("dev/loop0", TarMember::Kind::kBlock),
               Node("pipe", TarMember::Kind::kFifo), File("../evil", "")});
  std::vector<ReadMember> got = ReadTar(tar, /*expect_gzip=*/false);
  ASSERT_EQ(got.size(), 8u);

  EXPECT_EQ(got[0].name, "etc/");
  EXPECT_EQ(got[0].type, AE_IFDIR);
  EXPECT_EQ(got[0].perm, 0700u);

  EXPECT_EQ(got[1].name, "home/app/file");
  EXPECT_EQ(got[1].type, AE_IFREG);
  EXPECT_EQ(got[1].perm, 04755u);
  EXPECT_EQ(got[1].uid, 1000);
  EXPECT_EQ(got[1].gid, 1000);
  EXPECT_EQ(got[1].data, "data\n");
  EXPECT_EQ(got[1].xattrs, owned.xattrs);

  EXPECT_EQ(got[2].type, AE_IFLNK);
  EXPECT_EQ(got[2].symlink, "/usr/bin");
  EXPECT_EQ(got[2].perm, 0777u);
  EXPECT_EQ(got[2].uid, 0);

  EXPECT_EQ(got[3].hardlink, "etc/f");
  EXPECT_EQ(got[3].perm, 0644u);

  EXPECT_EQ(got[4].type, AE_IFCHR);
  EXPECT_EQ(got[4].rdev, makedev(1, 3));
  EXPECT_EQ(got[4].perm, 0600u);
  EXPECT_EQ(got[5].type, AE_IFBLK);
  EXPECT_EQ(got[5].rdev, makedev(7, 0));
  EXPECT_EQ(got[6].type, AE_IFIFO);

  EXPECT_EQ(got[7].name, "../evil");  // not cleaned: the unpacker must see it
}

TEST(MakeTar, SameMembersGiveTheSameBytes) {
  const std::vector<TarMember> members = {Dir("d/"), File("d/f", RandomData(5000, 7))};
  EXPECT_EQ(MakeTar(members), MakeTar(members));
  EXPECT_NE(MakeTar(members), MakeTar({Dir("d/"), File("d/f", RandomData(5000, 8))}));
}

TEST(MakeTar, GzipsWhenAsked) {
  const std::string tar = MakeTar({File("a", "x")});
  const std::string gz = MakeTar({File("a", "x")}, /*gzip=*/true);
  EXPECT_NE(tar, gz);
  std::vector<ReadMember> got = ReadTar(gz, /*expect_gzip=*/true);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "x");
}

TEST(Gzip, IsAGzipStreamOfTheBytes) {
  const std::string data = RandomData(70000, 3);
  const std::string gz = Gzip(data);
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(gz.substr(0, 2), "\x1f\x8b");
  archive* a = archive_read_new();
  archive_read_support_format_raw(a);
  archive_read_support_filter_gzip(a);
  ASSERT_EQ(archive_read_open_memory(a, gz.data(), gz.size()), ARCHIVE_OK);
  archive_entry* e = nullptr;
  ASSERT_EQ(archive_read_next_header(a, &e), ARCHIVE_OK);
  std::string back;
  char buf[4096];
  la_ssize_t n = 0;
  while ((n = archive_read_data(a, buf, sizeof buf)) > 0) back.append(buf, static_cast<size_t>(n));
  archive_read_free(a);
  EXPECT_EQ(back, data);
}

TEST(TempDir, IsRemovedWithItsContents) {
  std::string path;
  {
    TempDir dir("image-testing");
    path = dir.path();
    WriteFile(std::filesystem::path(path) / "a/b/c", "x");
    EXPECT_TRUE(std::filesystem::is_regular_file(std::filesystem::path(path) / "a/b/c"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace cce::image::testing

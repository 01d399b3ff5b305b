#include "decryptfs/inode_table.h"

#include <gtest/gtest.h>

namespace cce::decryptfs {
namespace {

using format::ManifestEntry;

ManifestEntry File(std::string path, uint64_t size, uint32_t mode = 0644) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = ManifestEntry::Type::kFile;
  e.id = std::string(32, 'a');
  e.size = size;
  e.mode = mode;
  e.mtime = 1700000000;
  return e;
}

ManifestEntry Dir(std::string path, uint32_t mode = 0755) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = ManifestEntry::Type::kDirectory;
  e.mode = mode;
  e.mtime = 1600000000;
  return e;
}

format::Manifest Make(std::vector<ManifestEntry> entries) {
  format::Manifest m;
  m.dataset_id = "d";
  m.segment_size = 65536;
  m.entries = std::move(entries);
  return m;
}

TEST(InodeTable, BuildsTreeWithSortedChildrenAndLinkCounts) {
  auto t = InodeTable::Build(
      Make({Dir("a"), File("a/z.csv", 10), Dir("a/b"), File("a/b/c.txt", 3), File("top", 5)}));
  ASSERT_TRUE(t.ok()) << t.status().message();
  const Inode* root = t->Get(kRootIno);
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->is_dir);
  EXPECT_EQ(root->parent, kRootIno);
  EXPECT_EQ(root->nlink, 3u);  // ".", "..", and a/
  const Inode* a = t->Lookup(kRootIno, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->is_dir);
  EXPECT_EQ(a->mode, 0555u);  // write bits stripped
  EXPECT_EQ(a->nlink, 3u);
  ASSERT_EQ(a->children.size(), 2u);
  EXPECT_EQ(t->Get(a->children[0])->name, "b");
  EXPECT_EQ(t->Get(a->children[1])->name, "z.csv");
  const Inode* c = t->Lookup(t->Lookup(a->ino, "b")->ino, "c.txt");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->path, "a/b/c.txt");
  EXPECT_EQ(c->size, 3u);
  EXPECT_EQ(c->mode, 0444u);
  ASSERT_NE(c->entry, nullptr);
  EXPECT_EQ(c->entry->path, "a/b/c.txt");
  EXPECT_EQ(t->Lookup(kRootIno, "missing"), nullptr);
  EXPECT_EQ(t->Lookup(c->ino, "x"), nullptr);  // not a directory
  EXPECT_EQ(t->Get(0), nullptr);
  EXPECT_EQ(t->Get(t->size() + 1), nullptr);
  EXPECT_EQ(t->total_file_bytes(), 18u);
}

TEST(InodeTable, StripsWriteSetuidAndSetgidBits) {
  auto t = InodeTable::Build(Make({File("x", 1, 06777), File("y", 1, 0600)}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Lookup(kRootIno, "x")->mode, 0555u);
  EXPECT_EQ(t->Lookup(kRootIno, "y")->mode, 0400u);
}

TEST(InodeTable, CreatesImplicitParentDirectories) {
  auto t = InodeTable::Build(Make({File("p/q/r/s.bin", 7)}));
  ASSERT_TRUE(t.ok()) << t.status().message();
  const Inode* p = t->Lookup(kRootIno, "p");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->is_dir);
  EXPECT_EQ(p->mode, 0555u);
  const Inode* r = t->Lookup(t->Lookup(p->ino, "q")->ino, "r");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(t->Get(r->parent)->name, "q");
  EXPECT_NE(t->Lookup(r->ino, "s.bin"), nullptr);
}

TEST(InodeTable, RejectsDuplicatesAndFilesUsedAsDirectories) {
  auto dup = InodeTable::Build(Make({File("a", 1), File("a", 2)}));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("'a' is listed twice"), std::string::npos);
  auto file_as_dir = InodeTable::Build(Make({File("a", 1), File("a/b", 2)}));
  ASSERT_FALSE(file_as_dir.ok());
  EXPECT_NE(file_as_dir.status().message().find("'a' is a file"), std::string::npos);
}

TEST(InodeTable, UnicodeNamesLookUpExactly) {
  auto t = InodeTable::Build(Make({File("données/日本語 ファイル.csv", 4)}));
  ASSERT_TRUE(t.ok());
  const Inode* d = t->Lookup(kRootIno, "données");
  ASSERT_NE(d, nullptr);
  EXPECT_NE(t->Lookup(d->ino, "日本語 ファイル.csv"), nullptr);
  EXPECT_EQ(t->Lookup(kRootIno, "donnees"), nullptr);
}

}  // namespace
}  // namespace cce::decryptfs

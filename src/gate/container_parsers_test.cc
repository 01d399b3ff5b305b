// Container parsers: archives are built here byte by byte (zlib, bzip2 and
// liblzma only compress), so each test controls exactly the structure it
// attacks: prepended/appended bytes, local/central disagreements, overlap,
// padding, bombs, and a minimal real-looking XLSX.
#include <bzlib.h>
#include <gtest/gtest.h>
#include <lzma.h>
#include <zlib.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "gate/content.h"

namespace cce::gate {
namespace {

using std::string;
using std::string_view;

// ---------------------------------------------------------------------------
// Builders.

string RawDeflate(string_view in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

uint32_t Crc(string_view s) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

void Put16(string* s, uint64_t v) {
  for (int i = 0; i < 2; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Put32(string* s, uint64_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Put64(string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// One gzip member, optionally with FNAME and FCOMMENT.
string Gzip(string_view in, string_view fname = "", string_view comment = "") {
  string out("\x1f\x8b\x08", 3);
  out.push_back(static_cast<char>((fname.empty() ? 0 : 0x08) | (comment.empty() ? 0 : 0x10)));
  out.append(string(6, '\0'));
  if (!fname.empty()) out.append(fname).push_back('\0');
  if (!comment.empty()) out.append(comment).push_back('\0');
  out += RawDeflate(in);
  Put32(&out, Crc(in));
  Put32(&out, in.size() & 0xFFFFFFFF);
  return out;
}

string Bzip2(string_view in) {
  std::vector<char> out(in.size() + in.size() / 100 + 1024);
  auto len = static_cast<unsigned>(out.size());
  EXPECT_EQ(BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(in.data()),
                                     static_cast<unsigned>(in.size()), 9, 0, 0),
            BZ_OK);
  return string(out.data(), len);
}

string Xz(string_view in) {
  string out(lzma_stream_buffer_bound(in.size()), '\0');
  size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr,
                                    reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                    reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}

struct ZipEntrySpec {
  string name = "";
  string data = "";
  uint16_t method = 8;
  string local_extra = "";
  string central_extra = "";
  string comment = "";
  bool descriptor = false;
  bool encrypted = false;
  string local_name = "";                // "" = name (tamper: local header names another file)
  int64_t local_size_delta = 0;          // tamper: local header's size
  int local_method = -1;                 // tamper: local header's method
  bool same_offset_as_previous = false;  // tamper: two entries, one local header
  string gap_after = "";                 // bytes after this member's data
};

struct ZipSpec {
  std::vector<ZipEntrySpec> entries;
  string prefix;   // prepended (offsets stay relative to the zip, as `cat stub a.zip` does)
  string suffix;   // appended after the end record
  string comment;  // archive comment
  bool zip64 = false;
};

string BuildZip(const ZipSpec& spec) {
  string out;
  std::vector<uint64_t> offsets;
  std::vector<string> compressed;
  for (const ZipEntrySpec& e : spec.entries) {
    offsets.push_back(out.size());
    const string data = e.method == 8 ? RawDeflate(e.data) : e.data;
    compressed.push_back(data);
    const uint32_t crc = Crc(e.data);
    const string& lname = e.local_name.empty() ? e.name : e.local_name;
    Put32(&out, 0x04034b50);
    Put16(&out, 20);
    Put16(&out, (e.descriptor ? 8 : 0) | (e.encrypted ? 1 : 0));
    Put16(&out, e.local_method >= 0 ? static_cast<uint16_t>(e.local_method) : e.method);
    Put16(&out, 0);
    Put16(&out, 0x21);
    Put32(&out, e.descriptor ? 0 : crc);
    Put32(&out, e.descriptor ? 0 : data.size());
    Put32(&out, e.descriptor ? 0
                             : static_cast<uint64_t>(static_cast<int64_t>(e.data.size()) +
                                                     e.local_size_delta));
    Put16(&out, lname.size());
    Put16(&out, e.local_extra.size());
    out += lname + e.local_extra + data;
    if (e.descriptor) {
      Put32(&out, 0x08074b50);
      Put32(&out, crc);
      Put32(&out, data.size());
      Put32(&out, e.data.size());
    }
    out += e.gap_after;
  }
  const uint64_t cd_start = out.size();
  for (size_t i = 0; i < spec.entries.size(); ++i) {
    const ZipEntrySpec& e = spec.entries[i];
    Put32(&out, 0x02014b50);
    Put16(&out, 20);
    Put16(&out, 20);
    Put16(&out, (e.descriptor ? 8 : 0) | (e.encrypted ? 1 : 0));
    Put16(&out, e.method);
    Put16(&out, 0);
    Put16(&out, 0x21);
    Put32(&out, Crc(e.data));
    Put32(&out, compressed[i].size());
    Put32(&out, e.data.size());
    Put16(&out, e.name.size());
    Put16(&out, e.central_extra.size());
    Put16(&out, e.comment.size());
    Put16(&out, 0);
    Put16(&out, 0);
    Put32(&out, 0);
    Put32(&out, e.same_offset_as_previous ? offsets[i - 1] : offsets[i]);
    out += e.name + e.central_extra + e.comment;
  }
  const uint64_t cd_size = out.size() - cd_start;
  const uint64_t count = spec.entries.size();
  if (spec.zip64) {
    const uint64_t rec = out.size();
    Put32(&out, 0x06064b50);
    Put64(&out, 44);
    Put16(&out, 45);
    Put16(&out, 45);
    Put32(&out, 0);
    Put32(&out, 0);
    Put64(&out, count);
    Put64(&out, count);
    Put64(&out, cd_size);
    Put64(&out, cd_start);
    Put32(&out, 0x07064b50);
    Put32(&out, 0);
    Put64(&out, rec);
    Put32(&out, 1);
  }
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, spec.zip64 ? 0xFFFF : count);
  Put16(&out, spec.zip64 ? 0xFFFF : count);
  Put32(&out, spec.zip64 ? 0xFFFFFFFF : cd_size);
  Put32(&out, spec.zip64 ? 0xFFFFFFFF : cd_start);
  Put16(&out, spec.comment.size());
  out += spec.comment;
  return spec.prefix + out + spec.suffix;
}

string Octal(uint64_t v, size_t width) {  // width-1 digits and a NUL
  string s(width - 1, '0');
  for (size_t i = width - 1; i-- > 0 && v != 0; v /= 8) s[i] = static_cast<char>('0' + v % 8);
  return s + '\0';
}

string TarHeader(string_view name, uint64_t size, char type = '0', string_view prefix = "",
                 string_view linkname = "") {
  string h(512, '\0');
  h.replace(0, name.size(), name);
  h.replace(100, 8, Octal(0644, 8));
  h.replace(108, 8, Octal(1000, 8));
  h.replace(116, 8, Octal(1000, 8));
  h.replace(124, 12, Octal(size, 12));
  h.replace(136, 12, Octal(1700000000, 12));
  h[156] = type;
  h.replace(157, linkname.size(), linkname);
  h.replace(257, 8,
            string("ustar\0"
                   "00",
                   8));
  h.replace(265, 4, "user");
  h.replace(297, 5, "group");
  h.replace(345, prefix.size(), prefix);
  return h;
}

// Sets the checksum field of a header built (or tampered) above.
string Sealed(string h) {
  h.replace(148, 8, "        ");
  uint64_t sum = 0;
  for (const char c : h) sum += static_cast<uint8_t>(c);
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06o", static_cast<unsigned>(sum));
  h.replace(148, 7, string(buf, 6) + '\0');
  return h;
}

string Padding(uint64_t size) {
  return string((512 - size % 512) % 512, '\0');
}

string TarFile(string_view name, string_view data, char type = '0') {
  return Sealed(TarHeader(name, data.size(), type)) + string(data) + Padding(data.size());
}

string TarEnd() {
  return string(1024, '\0');
}

// ---------------------------------------------------------------------------
// Running a parser.

struct Outcome {
  Status status;
  Parsed parsed;
  uint64_t budget = 0;  // left after the parse
};

Outcome Parse(ParseFn fn, string_view bytes, string path = "out/x", const Policy& policy = Policy{},
              uint64_t budget = 1024 * kMiB) {
  Outcome run;
  run.budget = budget;
  ParseContext ctx{policy, run.budget};
  run.status = fn(Item{std::move(path), bytes, 0}, ctx, &run.parsed);
  return run;
}

const Finding* FindingOf(const Parsed& p, string_view detector) {
  for (const Finding& f : p.findings) {
    if (f.detector == detector) return &f;
  }
  return nullptr;
}

const Child* ChildNamed(const Parsed& p, string_view name) {
  for (const Child& c : p.children) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool HasText(const Parsed& p, string_view needle) {
  for (const TextSpan& t : p.texts) {
    if (t.text.find(needle) != string::npos) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// gzip, bzip2, xz.

TEST(Gzip, ChildIsNamedByFnameAndHeaderTextsAreScanned) {
  const string gz = Gzip("id,name\n1,Alice\n", "data.csv", "made by job 7");
  Outcome run = Parse(ParseGzip, gz, "out/whatever.gz");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "data.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "id,name\n1,Alice\n");
  EXPECT_TRUE(HasText(run.parsed, "data.csv"));
  EXPECT_TRUE(HasText(run.parsed, "made by job 7"));
  EXPECT_TRUE(run.parsed.findings.empty());
  EXPECT_EQ(run.budget, 1024 * kMiB - 16);  // the child's bytes were charged
}

TEST(Gzip, ChildIsNamedAfterTheItemWithoutSuffix) {
  Outcome run = Parse(ParseGzip, Gzip("x"), "out/report.csv.gz");
  ASSERT_TRUE(run.status.ok());
  EXPECT_EQ(run.parsed.children.at(0).name, "report.csv");
  run = Parse(ParseGzip, Gzip("x"), "out/bundle.tgz");
  EXPECT_EQ(run.parsed.children.at(0).name, "bundle.tar");
  run = Parse(ParseGzip, Gzip("x"), "out/blob");
  EXPECT_EQ(run.parsed.children.at(0).name, "gunzip");
}

TEST(Gzip, AllMembersOfAMultiMemberStreamAreRead) {
  Outcome run = Parse(ParseGzip, Gzip("first,") + Gzip("second"));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].bytes, "first,second");
}

TEST(Gzip, TrailingBytesAreACovertChannel) {
  Outcome run = Parse(ParseGzip, Gzip("clean") + "SECRET ROWS");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "covert.trailing");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->offset, static_cast<int64_t>(Gzip("clean").size()));
  const Child* trailing = ChildNamed(run.parsed, "trailing");
  ASSERT_NE(trailing, nullptr);
  EXPECT_EQ(trailing->bytes, "SECRET ROWS");

  Policy lenient;
  lenient.max_trailing_bytes = 64;
  run = Parse(ParseGzip, Gzip("clean") + "SECRET ROWS", "out/x", lenient);
  ASSERT_NE(FindingOf(run.parsed, "covert.trailing"), nullptr);
  EXPECT_FALSE(FindingOf(run.parsed, "covert.trailing")->hard);
}

TEST(Gzip, CorruptStreamIsAnError) {
  string gz = Gzip(string(1000, 'a'));
  gz[gz.size() - 6] ^= 0x55;  // the CRC
  EXPECT_FALSE(Parse(ParseGzip, gz).status.ok());
  EXPECT_FALSE(Parse(ParseGzip, "\x1f\x8b\x08").status.ok());
}

// 1000 members of 10 MiB of zeros: ~10 MB expanding to ~10 GB.
TEST(Gzip, TenGigabyteBombStopsAtTheLimitWithAFinding) {
  const string member = Gzip(string(10 * kMiB, '\0'));
  string bomb;
  bomb.reserve(member.size() * 1000);
  for (int i = 0; i < 1000; ++i) bomb += member;
  Outcome run = Parse(ParseGzip, bomb);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "encoding.bomb");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_NE(f->message.find("max_child_bytes"), string::npos) << f->message;
  EXPECT_TRUE(run.parsed.children.empty());
  EXPECT_EQ(run.budget, 1024 * kMiB);  // nothing was handed on

  // Nested: the bomb gzipped again. Whatever level trips, it trips before
  // anything near 10 GB is produced.
  string level = Gzip(bomb);
  bool tripped = false;
  uint64_t budget = 1024 * kMiB;
  for (int depth = 0; depth < 3 && !tripped; ++depth) {
    Outcome r = Parse(ParseGzip, level, "out/nested.gz", Policy{}, budget);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    budget = r.budget;
    tripped = FindingOf(r.parsed, "encoding.bomb") != nullptr;
    if (!tripped) level = r.parsed.children.at(0).bytes;
  }
  EXPECT_TRUE(tripped);
  EXPECT_GE(budget, 1024 * kMiB - 256 * kMiB);
}

TEST(Gzip, StreamOverThePerChildLimitIsABomb) {
  Policy policy;
  policy.max_child_bytes = 4 * kMiB;
  Outcome run = Parse(ParseGzip, Gzip(string(8 * kMiB, 'z')), "out/x", policy);
  ASSERT_TRUE(run.status.ok());
  ASSERT_NE(FindingOf(run.parsed, "encoding.bomb"), nullptr);
  EXPECT_TRUE(run.parsed.children.empty());
}

TEST(Gzip, ExpansionBudgetIsRespected) {
  Outcome run = Parse(ParseGzip, Gzip(string(4096, 'q')), "out/x", Policy{}, 1000);
  ASSERT_TRUE(run.status.ok());
  ASSERT_NE(FindingOf(run.parsed, "encoding.bomb"), nullptr);
  EXPECT_NE(
      FindingOf(run.parsed, "encoding.bomb")->message.find("expands past the scan's remaining"),
      string::npos)
      << FindingOf(run.parsed, "encoding.bomb")->message;
  EXPECT_EQ(run.budget, 1000u);
}

TEST(Bzip2, DecompressesConcatenatedStreamsAndReportsTrailingBytes) {
  Outcome run = Parse(ParseBzip2, Bzip2("a,b\n") + Bzip2("1,2\n"), "out/t.csv.bz2");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "t.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "a,b\n1,2\n");
  EXPECT_EQ(FindingOf(run.parsed, "covert.trailing"), nullptr);

  run = Parse(ParseBzip2, Bzip2("a,b\n") + "hidden");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_NE(FindingOf(run.parsed, "covert.trailing"), nullptr);
  EXPECT_EQ(ChildNamed(run.parsed, "trailing")->bytes, "hidden");
}

TEST(Bzip2, BombIsAFinding) {
  Outcome run = Parse(ParseBzip2, Bzip2(string(20 * kMiB, '\0')));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_NE(FindingOf(run.parsed, "encoding.bomb"), nullptr);
  EXPECT_TRUE(run.parsed.children.empty());
}

TEST(Xz, DecompressesAndFindsDataAfterTheStreams) {
  Outcome run = Parse(ParseXz, Xz("x,y\n") + Xz("3,4\n"), "out/t.csv.xz");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "t.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "x,y\n3,4\n");
  EXPECT_TRUE(run.parsed.findings.empty());

  const string xz = Xz("x,y\n");
  run = Parse(ParseXz, xz + "appended secret");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "covert.trailing");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, static_cast<int64_t>(xz.size()));
  EXPECT_EQ(ChildNamed(run.parsed, "trailing")->bytes, "appended secret");
  EXPECT_EQ(ChildNamed(run.parsed, "unxz")->bytes, "x,y\n");
}

TEST(Xz, BombAndCorruptionAreReported) {
  Outcome run = Parse(ParseXz, Xz(string(30 * kMiB, '\0')));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_NE(FindingOf(run.parsed, "encoding.bomb"), nullptr);
  string xz = Xz(string(100, 'k'));
  xz[xz.size() / 2] ^= 0x20;
  EXPECT_FALSE(Parse(ParseXz, xz).status.ok());
}

// ---------------------------------------------------------------------------
// zip.

ZipSpec TwoMembers() {
  ZipSpec spec;
  spec.entries.push_back({.name = "table.csv", .data = "age,count\n30,12\n40,15\n"});
  spec.entries.push_back({.name = "notes.txt", .data = "plain notes", .method = 0});
  return spec;
}

TEST(Zip, StoredAndDeflatedMembersBecomeChildren) {
  Outcome run = Parse(ParseZip, BuildZip(TwoMembers()));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 2u);
  EXPECT_EQ(run.parsed.children[0].name, "table.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "age,count\n30,12\n40,15\n");
  EXPECT_EQ(run.parsed.children[1].name, "notes.txt");
  EXPECT_EQ(run.parsed.children[1].bytes, "plain notes");
  EXPECT_TRUE(run.parsed.findings.empty());
  EXPECT_TRUE(HasText(run.parsed, "table.csv\nnotes.txt\n"));  // names are scanned too
}

TEST(Zip, PrependedDataIsCovertAndMembersStillParse) {
  ZipSpec spec = TwoMembers();
  spec.prefix = "#!/bin/sh\necho self-extracting\n";
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.parsed.children.size(), 3u);
  const Finding* f = FindingOf(run.parsed, "covert.zip");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->offset, 0);
  EXPECT_NE(f->message.find("prepended"), string::npos) << f->message;
  EXPECT_EQ(ChildNamed(run.parsed, "unused")->bytes, spec.prefix);
  EXPECT_EQ(ChildNamed(run.parsed, "table.csv")->bytes, "age,count\n30,12\n40,15\n");
}

TEST(Zip, AppendedDataAndGapsAreCovert) {
  ZipSpec spec = TwoMembers();
  spec.suffix = "appended rows";
  spec.entries[0].gap_after = "GAP";
  const string zip = BuildZip(spec);
  Outcome run = Parse(ParseZip, zip);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  int covert = 0;
  for (const Finding& f : run.parsed.findings) covert += f.detector == "covert.zip" ? 1 : 0;
  EXPECT_EQ(covert, 2);
  EXPECT_EQ(ChildNamed(run.parsed, "unused")->bytes, "GAPappended rows");

  Policy lenient;
  lenient.max_trailing_bytes = 100;
  run = Parse(ParseZip, zip, "out/x", lenient);
  EXPECT_FALSE(FindingOf(run.parsed, "covert.zip")->hard);
}

TEST(Zip, LocalAndCentralDisagreementIsAnError) {
  ZipSpec spec = TwoMembers();
  spec.entries[0].local_name = "other.csv";
  Outcome run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("disagree"), string::npos) << run.status.message();

  spec = TwoMembers();
  spec.entries[1].local_size_delta = 3;
  run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("disagrees"), string::npos) << run.status.message();

  spec = TwoMembers();
  spec.entries[0].local_method = 0;
  run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("method"), string::npos) << run.status.message();
}

TEST(Zip, EncryptedAndUnsupportedMethodsCannotBeParsed) {
  ZipSpec spec = TwoMembers();
  spec.entries[0].encrypted = true;
  Outcome run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("is encrypted"), string::npos) << run.status.message();

  spec = TwoMembers();
  spec.entries[1].method = 12;  // bzip2 in zip; data stays stored bytes
  run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("uses method 12"), string::npos) << run.status.message();
}

TEST(Zip, OverlappingMembersAreAnError) {
  ZipSpec spec;
  spec.entries.push_back({.name = "a.csv", .data = "1,2\n"});
  spec.entries.push_back({.name = "a.csv", .data = "1,2\n", .same_offset_as_previous = true});
  Outcome run = Parse(ParseZip, BuildZip(spec));
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("overlap"), string::npos) << run.status.message();
}

TEST(Zip, CrcMismatchIsAnError) {
  string zip = BuildZip(TwoMembers());
  const size_t at = zip.find("plain notes");
  zip[at] = 'P';
  Outcome run = Parse(ParseZip, zip);
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("CRC"), string::npos) << run.status.message();
}

TEST(Zip, DataDescriptorsAreRead) {
  ZipSpec spec = TwoMembers();
  spec.entries[0].descriptor = true;
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.parsed.children.size(), 2u);
  EXPECT_TRUE(run.parsed.findings.empty());
}

TEST(Zip, Zip64EndRecordIsRead) {
  ZipSpec spec = TwoMembers();
  spec.zip64 = true;
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_EQ(run.parsed.children.size(), 2u);
  EXPECT_TRUE(run.parsed.findings.empty());
}

TEST(Zip, DeclaredSizeOverRatioIsABomb) {
  ZipSpec spec;
  spec.entries.push_back({.name = "zeros.bin", .data = string(50 * kMiB, '\0')});
  spec.entries.push_back({.name = "ok.txt", .data = "fine"});
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "encoding.bomb");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->message.find("zeros.bin"), string::npos) << f->message;
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "ok.txt");
}

TEST(Zip, CommentsAndUnknownExtraFieldsAreScanned) {
  ZipSpec spec = TwoMembers();
  spec.comment = "archive comment: 123-45-6789";
  spec.entries[0].comment = "member comment";
  string extra;
  Put16(&extra, 0x4242);
  Put16(&extra, 10);
  extra += "HIDDENDATA";
  spec.entries[0].central_extra = extra;
  string known;  // extended timestamp: ordinary
  Put16(&known, 0x5455);
  Put16(&known, 5);
  known += string("\x01\x00\x00\x00\x00", 5);
  spec.entries[1].local_extra = known;
  spec.entries[1].central_extra = known;
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_TRUE(HasText(run.parsed, "archive comment: 123-45-6789"));
  EXPECT_TRUE(HasText(run.parsed, "member comment"));
  EXPECT_TRUE(HasText(run.parsed, "HIDDENDATA"));
  int covert = 0;
  for (const Finding& f : run.parsed.findings) {
    if (f.detector == "covert.zip") {
      ++covert;
      EXPECT_NE(f.location.find("0x4242"), string::npos) << f.location;
    }
  }
  EXPECT_EQ(covert, 1);
}

TEST(Zip, ClimbingAndDuplicateNamesAreReported) {
  ZipSpec spec;
  spec.entries.push_back({.name = "../../etc/cron.d/x", .data = "a"});
  spec.entries.push_back({.name = "ok.txt", .data = "b"});
  spec.entries.push_back({.name = "ok.txt", .data = "c"});
  Outcome run = Parse(ParseZip, BuildZip(spec));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  int paths = 0;
  for (const Finding& f : run.parsed.findings) {
    if (f.detector != "archive.path") continue;
    ++paths;
    EXPECT_FALSE(f.hard);
  }
  EXPECT_EQ(paths, 2);
  EXPECT_EQ(run.parsed.children.size(), 3u);
}

TEST(Zip, NotAZipIsAnError) {
  EXPECT_FALSE(Parse(ParseZip, "PK\x03\x04 not really").status.ok());
  EXPECT_FALSE(Parse(ParseZip, string(100, 'x')).status.ok());
}

TEST(Zip, NpzMembersAreNpyChildren) {
  const string npy = string("\x93NUMPY\x01\x00", 8) + "v\x00" +
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }         \n" +
                     string(16, '\0');
  ZipSpec spec;
  spec.entries.push_back({.name = "coef_.npy", .data = npy, .method = 0});
  spec.entries.push_back({.name = "arr_1.npy", .data = npy});
  Outcome run = Parse(ParseZip, BuildZip(spec), "out/model.npz");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 2u);
  EXPECT_EQ(run.parsed.children[0].name, "coef_.npy");
  EXPECT_EQ(run.parsed.children[1].name, "arr_1.npy");
  EXPECT_EQ(run.parsed.children[1].bytes, npy);
}

// ---------------------------------------------------------------------------
// tar.

TEST(Tar, RegularFilesBecomeChildrenWithTheirPaths) {
  string h = TarHeader("table.csv", 9, '0', "results/2024");
  const string tar = Sealed(h) + "a,b\n1,2\n\n" + Padding(9) +
                     Sealed(TarHeader("results/", 0, '5')) + TarFile("notes.md", "# notes\n") +
                     TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 2u);
  EXPECT_EQ(run.parsed.children[0].name, "results/2024/table.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "a,b\n1,2\n\n");
  EXPECT_EQ(run.parsed.children[1].name, "notes.md");
  EXPECT_TRUE(run.parsed.findings.empty());
  EXPECT_TRUE(HasText(run.parsed, "results/2024/table.csv\n"));
}

TEST(Tar, PaxPathAndSizeOverrideTheHeader) {
  const string records = "31 path=long/name/from/pax.csv\n" + string("11 size=11\n");
  const string tar = TarFile("PaxHeader", records, 'x') + Sealed(TarHeader("short.csv", 0)) +
                     "eleven byte" + Padding(11) + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "long/name/from/pax.csv");
  EXPECT_EQ(run.parsed.children[0].bytes, "eleven byte");
}

TEST(Tar, GnuLongNamesAreUsed) {
  const string long_name = string(150, 'd') + "/file.csv";
  const string tar =
      TarFile("././@LongLink", long_name + '\0', 'L') + TarFile("trunc", "x,y\n") + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, long_name);
}

TEST(Tar, ChecksumMismatchNamesTheHeader) {
  string second = TarFile("b.csv", "2\n");
  second[0] = 'c';  // name changed after sealing
  const string tar = TarFile("a.csv", "1\n") + second + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("header at byte 1024: checksum mismatch"), string::npos)
      << run.status.message();
}

TEST(Tar, NonZeroPaddingIsCovert) {
  const string tar =
      Sealed(TarHeader("a.csv", 4)) + "1,2\n" + "SECRET" + string(502, '\0') + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "covert.tar");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_EQ(f->offset, 516);
  EXPECT_EQ(ChildNamed(run.parsed, "hidden")->bytes.substr(0, 6), "SECRET");
}

TEST(Tar, DataAfterTheEndMarkerIsCovert) {
  const string tar = TarFile("a.csv", "1\n") + TarEnd() + "after the end" + string(100, '\0');
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "covert.tar");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->offset, 1024 + 1024);
  EXPECT_EQ(ChildNamed(run.parsed, "hidden")->bytes, "after the end");
  // Zero padding to a record size is normal.
  run = Parse(ParseTar, TarFile("a.csv", "1\n") + TarEnd() + string(8192, '\0'));
  EXPECT_TRUE(run.parsed.findings.empty());
}

TEST(Tar, HeaderSlackIsCovert) {
  string h = TarHeader("a.csv", 2);
  h.replace(10, 6, "hidden");  // after the name's NUL
  const string tar = Sealed(h) + "1\n" + Padding(2) + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_NE(FindingOf(run.parsed, "covert.tar"), nullptr);
  EXPECT_NE(FindingOf(run.parsed, "covert.tar")->message.find("name"), string::npos);
}

TEST(Tar, DevicesAreListedSoftly) {
  const string tar = Sealed(TarHeader("dev/null", 0, '3')) + TarFile("a.csv", "1\n") + TarEnd();
  Outcome run = Parse(ParseTar, tar);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "type");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->hard);
  EXPECT_NE(f->message.find("character device"), string::npos);
  // Symlinks are not listed.
  run = Parse(ParseTar, Sealed(TarHeader("l", 0, '2', "", "/etc/passwd")) + TarEnd());
  EXPECT_EQ(FindingOf(run.parsed, "type"), nullptr);
}

TEST(Tar, SizePastTheEndIsAnError) {
  const string tar = Sealed(TarHeader("a.csv", 5000)) + "short";
  Outcome run = Parse(ParseTar, tar);
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("runs past the end"), string::npos);
}

// ---------------------------------------------------------------------------
// XLSX.

constexpr string_view kMain = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
constexpr string_view kRel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

struct Xlsx {
  string content_types =
      R"(<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>)";
  string shared =
      "<sst xmlns=\"" + string(kMain) +
      "\" count=\"6\" uniqueCount=\"5\"><si><t>name</t></si><si><t>age</t></si><si><t>city</t>"
      "</si><si><r><t>Al</t></r><r><rPr><b/></rPr><t>ice</t></r><rPh sb=\"0\" eb=\"1\"><t>ARISU</t>"
      "</rPh></si><si><t xml:space=\"preserve\">Leeds &amp; Bradford</t></si></sst>";
  string sheet1 = "<?xml version=\"1.0\"?>\n<worksheet xmlns=\"" + string(kMain) + "\" xmlns:r=\"" +
                  string(kRel) +
                  "\"><dimension ref=\"A1:C5\"/><sheetData>"
                  "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c>"
                  "<c r=\"C1\" t=\"s\"><v>2</v></c></row>"
                  "<row r=\"2\" spans=\"1:3\"><c r=\"A2\" t=\"s\"><v>3</v></c><c r=\"C2\" "
                  "t=\"s\"><v>4</v></c></row>"
                  "<row r=\"5\"><c r=\"A5\" t=\"inlineStr\"><is><t>Bob &lt;B&gt;</t></is></c>"
                  "<c r=\"B5\" s=\"1\"><v>42.50</v></c><c r=\"C5\" t=\"b\"><v>1</v></c></row>"
                  "</sheetData></worksheet>";
  string sheet2 = "<worksheet xmlns=\"" + string(kMain) +
                  "\"><sheetData><row r=\"1\"><c r=\"B1\"><v>7</v></c><c r=\"D1\" t=\"str\">"
                  "<f>SUM(B1)</f><v>7</v></c></row></sheetData></worksheet>";
  std::vector<ZipEntrySpec> extra;  // more parts

  string Build() const {
    ZipSpec spec;
    spec.entries.push_back({.name = "[Content_Types].xml", .data = content_types});
    spec.entries.push_back(
        {.name = "_rels/.rels",
         .data = "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
                 "relationships\"><Relationship Id=\"rId1\" Type=\"" +
                 string(kRel) + "/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"});
    spec.entries.push_back(
        {.name = "xl/workbook.xml",
         .data = "<workbook xmlns=\"" + string(kMain) + "\" xmlns:r=\"" + string(kRel) +
                 "\"><sheets><sheet name=\"Patients\" sheetId=\"1\" r:id=\"rId1\"/>"
                 "<sheet name=\"Summary &amp; totals\" sheetId=\"2\" r:id=\"rId2\"/></sheets>"
                 "</workbook>"});
    spec.entries.push_back(
        {.name = "xl/_rels/workbook.xml.rels",
         .data = "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/"
                 "relationships\"><Relationship Id=\"rId1\" Type=\"" +
                 string(kRel) +
                 "/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" "
                 "Type=\"" +
                 string(kRel) +
                 "/worksheet\" Target=\"/xl/worksheets/sheet7.xml\"/>"
                 "<Relationship Id=\"rId3\" Type=\"" +
                 string(kRel) +
                 "/sharedStrings\" Target=\"sharedStrings.xml\"/><Relationship Id=\"rId9\" "
                 "Type=\"" +
                 string(kRel) +
                 "/hyperlink\" Target=\"http://example.com/x\" "
                 "TargetMode=\"External\"/></Relationships>"});
    spec.entries.push_back({.name = "xl/sharedStrings.xml", .data = shared});
    spec.entries.push_back({.name = "xl/worksheets/sheet1.xml", .data = sheet1});
    spec.entries.push_back({.name = "xl/worksheets/sheet7.xml", .data = sheet2});
    for (const ZipEntrySpec& e : extra) spec.entries.push_back(e);
    return BuildZip(spec);
  }
};

TEST(Xlsx, SheetsBecomeTablesWithCellsInTheirColumns) {
  Outcome run = Parse(ParseXlsx, Xlsx().Build(), "out/book.xlsx");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_EQ(run.parsed.tables.size(), 2u);
  const Table& t = run.parsed.tables[0];
  EXPECT_EQ(t.file, "out/book.xlsx");
  EXPECT_EQ(t.name, "Patients");
  EXPECT_EQ(t.header, (std::vector<string>{"name", "age", "city"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0], (std::vector<string>{"Alice", "", "Leeds & Bradford"}));
  EXPECT_EQ(t.rows[1], (std::vector<string>{"Bob <B>", "42.50", "TRUE"}));
  EXPECT_EQ(t.row_lines, (std::vector<uint64_t>{2, 5}));

  const Table& s = run.parsed.tables[1];
  EXPECT_EQ(s.name, "Summary & totals");
  EXPECT_EQ(s.header, (std::vector<string>{"", "", "", ""}));  // first row is not all strings
  ASSERT_EQ(s.rows.size(), 1u);
  EXPECT_EQ(s.rows[0], (std::vector<string>{"", "7", "", "7"}));
  EXPECT_TRUE(HasText(run.parsed, "SUM(B1)"));
  EXPECT_FALSE(HasText(run.parsed, "ARISU"));  // phonetic runs are not cell text
  EXPECT_EQ(FindingOf(run.parsed, "covert.xlsx"), nullptr);
  EXPECT_EQ(FindingOf(run.parsed, "type"), nullptr);
  EXPECT_TRUE(run.parsed.children.empty());
}

TEST(Xlsx, CommentsPropertiesAndCachesAreTextAndImagesAreChildren) {
  Xlsx x;
  x.extra.push_back({.name = "xl/comments1.xml",
                     .data = "<comments xmlns=\"" + string(kMain) +
                             "\"><authors><author>Dr Who</author></authors><commentList>"
                             "<comment ref=\"A2\" authorId=\"0\"><text><r><t>patient 123-45-6789"
                             "</t></r></text></comment></commentList></comments>"});
  x.extra.push_back({.name = "docProps/core.xml",
                     .data = "<cp:coreProperties xmlns:cp=\"urn:cp\" xmlns:dc=\"urn:dc\">"
                             "<dc:title>Confidential title</dc:title></cp:coreProperties>"});
  x.extra.push_back({.name = "xl/pivotCache/pivotCacheRecords1.xml",
                     .data = "<pivotCacheRecords xmlns=\"" + string(kMain) +
                             "\" count=\"2\"><r><s v=\"Alice\"/><n v=\"42\"/></r>"
                             "<r><s v=\"Bob\"/><n v=\"17\"/></r></pivotCacheRecords>"});
  x.extra.push_back({.name = "xl/media/image1.png", .data = "\x89PNG\r\n\x1a\n fake", .method = 0});
  Outcome run = Parse(ParseXlsx, x.Build(), "out/book.xlsx");
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_TRUE(HasText(run.parsed, "patient 123-45-6789"));
  EXPECT_TRUE(HasText(run.parsed, "Confidential title"));
  EXPECT_TRUE(HasText(run.parsed, "Alice\t42\nBob\t17\n"));
  ASSERT_EQ(run.parsed.children.size(), 1u);
  EXPECT_EQ(run.parsed.children[0].name, "xl/media/image1.png");
}

TEST(Xlsx, MacrosAreAHardTypeFinding) {
  Xlsx x;
  x.extra.push_back({.name = "xl/vbaProject.bin", .data = string("\xD0\xCF\x11\xE0", 4) + "vba"});
  Outcome run = Parse(ParseXlsx, x.Build());
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const Finding* f = FindingOf(run.parsed, "type");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->hard);
  EXPECT_NE(f->message.find("macro-enabled workbook"), string::npos);
}

TEST(Xlsx, DoctypeAndUnknownEntitiesAreRefused) {
  Xlsx x;
  x.sheet1 = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><worksheet/>";
  Outcome run = Parse(ParseXlsx, x.Build());
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("DOCTYPE and other declarations are refused"), string::npos)
      << run.status.message();

  x = Xlsx();
  x.shared = "<sst><si><t>&ext;</t></si></sst>";
  run = Parse(ParseXlsx, x.Build());
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("entity"), string::npos) << run.status.message();
}

TEST(Xlsx, BadCellsAreErrors) {
  Xlsx x;
  x.sheet2 =
      "<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>99</v></c></row>"
      "</sheetData></worksheet>";
  Outcome run = Parse(ParseXlsx, x.Build());
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("shared string '99' out of range"), string::npos)
      << run.status.message();

  x = Xlsx();  // a second value for B1 would hide the first
  x.sheet2 =
      "<worksheet><sheetData><row r=\"1\"><c r=\"B1\"><v>1</v></c><c r=\"B1\"><v>2</v></c>"
      "</row></sheetData></worksheet>";
  run = Parse(ParseXlsx, x.Build());
  EXPECT_FALSE(run.status.ok());
  EXPECT_NE(run.status.message().find("out of order"), string::npos) << run.status.message();
}

TEST(Xlsx, HiddenTextIsFound) {
  Xlsx x;  // a shared string no cell shows, text between cells
  x.shared.insert(x.shared.find("</sst>"), "<si><t>hidden 987-65-4321</t></si>");
  x.sheet2 =
      "<worksheet><sheetData><row r=\"1\"><c r=\"B1\"><v>7</v></c>stray secret</row>"
      "</sheetData></worksheet>";
  Outcome run = Parse(ParseXlsx, x.Build());
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  EXPECT_TRUE(HasText(run.parsed, "hidden 987-65-4321"));
  EXPECT_TRUE(HasText(run.parsed, "stray secret"));
  int covert = 0;
  for (const Finding& f : run.parsed.findings) covert += f.detector == "covert.xlsx" ? 1 : 0;
  EXPECT_EQ(covert, 2);
}

TEST(Xlsx, MissingPartsAreErrors) {
  ZipSpec spec;
  spec.entries.push_back({.name = "xl/workbook.xml", .data = "<workbook/>"});
  EXPECT_FALSE(Parse(ParseXlsx, BuildZip(spec)).status.ok());
}

TEST(Xlsx, WideSparseSheetIsBounded) {
  Xlsx x;
  string rows;
  for (int r = 1; r <= 2000; ++r) {
    rows += "<row r=\"" + std::to_string(r) + "\"><c r=\"XFD" + std::to_string(r) +
            "\"><v>1</v></c></row>";
  }
  x.sheet2 = "<worksheet><sheetData>" + rows + "</sheetData></worksheet>";
  Policy policy;
  policy.max_child_bytes = 64 * kMiB;
  Outcome run = Parse(ParseXlsx, x.Build(), "out/x", policy);
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  ASSERT_NE(FindingOf(run.parsed, "encoding.bomb"), nullptr);
  EXPECT_EQ(run.parsed.tables.size(), 1u);  // sheet 1 still read
}

}  // namespace
}  // namespace cce::gate

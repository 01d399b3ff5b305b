#include "plane/output_store.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>

#include "format/format.h"

namespace cce::plane {
namespace {

// Layout (docs/plane.md, "Job outputs"): the magic, the length of the
// wrapped key (u16 big-endian), the per-output key sealed by the master key
// (context "output:<job id>"), then one file of the dataset format (its
// 68-byte header, then the segments). The unsegmented format of earlier
// builds began with the master key's version byte 0x01.
constexpr std::array<uint8_t, 8> kOutputMagic = {'C', 'C', 'E', '4', 'O', 'U', 'T', '\n'};
constexpr uint8_t kLegacyVersionByte = 0x01;
constexpr size_t kMaxWrappedKeyBytes = 256;
// Segments are sealed, written, read and authenticated in runs of this many
// (64 KiB of plaintext: the most held at once, one write or pread per run).
constexpr uint64_t kRunSegments = 16;
constexpr size_t kMaxGetBytes = size_t{1} << 31;

std::string Context(const std::string& job_id) {
  return "output:" + job_id;
}

Status CheckJobId(const std::string& job_id) {
  if (job_id.empty() || job_id.find_first_of("/.") != std::string::npos) {
    return InvalidArgument("output: job id '" + job_id + "' is not a plain name");
  }
  return Status::Ok();
}

}  // namespace

struct OutputReader::Impl {
  std::string job_id;
  UniqueFd fd;
  std::unique_ptr<format::FileCipher> cipher;
  uint64_t base = 0;  // where the dataset-format file starts
  uint64_t next = 0;  // the next segment to read
  bool done = false;
  bool pending = false;  // `plain` holds the run Open authenticated ahead
  size_t pending_size = 0;
  crypto::SecretBytes plain;
  crypto::Bytes sealed;
  crypto::Sha256Hasher hash;
  std::string expected_digest;

  // Reads and authenticates the next run of segments into `plain`.
  StatusOr<size_t> ReadRun() {
    const format::Geometry& g = cipher->geometry();
    const uint64_t first = next;
    const uint64_t count = std::min(kRunSegments, g.SegmentCount() - first);
    const auto n = static_cast<size_t>(g.RunPlainSize(first, count));
    std::span<uint8_t> in(sealed.data(), static_cast<size_t>(g.RunSealedSize(first, count)));
    ASSIGN_OR_RETURN(size_t got, PreadFull(fd.get(), in, base + g.SegmentOffset(first)));
    // A short read leaves `in` short: OpenRun names the truncated segment.
    Status opened = cipher->OpenRun(first, count, in.first(got), plain.span().first(n));
    if (!opened.ok()) return DataLoss("output of " + job_id + ": " + opened.message());
    hash.Update(plain.span().first(n));
    next += count;
    if (next == g.SegmentCount()) {
      done = true;
      if (!expected_digest.empty() && "sha256:" + crypto::ToHex(hash.Finish()) != expected_digest) {
        OPENSSL_cleanse(plain.data(), plain.size());
        return DataLoss("output of " + job_id +
                        ": stored output does not match its recorded digest");
      }
    }
    return n;
  }
};

OutputReader::OutputReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OutputReader::~OutputReader() = default;

uint64_t OutputReader::size() const {
  return impl_->cipher->geometry().plaintext_size;
}

StatusOr<crypto::ByteSpan> OutputReader::Next() {
  Impl& r = *impl_;
  if (r.pending) {
    r.pending = false;
    return crypto::ByteSpan(r.plain.data(), r.pending_size);
  }
  if (r.done) return crypto::ByteSpan();
  ASSIGN_OR_RETURN(size_t n, r.ReadRun());
  return crypto::ByteSpan(r.plain.data(), n);
}

StatusOr<OutputStore> OutputStore::Open(const std::string& dir, MasterKey& master_key) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(dir, errno);
  return OutputStore(dir, master_key);
}

std::string OutputStore::PathFor(const std::string& job_id) const {
  return dir_ + "/" + job_id + ".sealed";
}

struct OutputWriter::Impl {
  std::string dir;
  std::string job_id;
  std::string path;  // where Finish renames the file to
  std::string tmp;   // the file being written; removed unless Finish succeeded
  UniqueFd fd;
  std::unique_ptr<format::FileCipher> cipher;
  crypto::SecretBytes plain;  // the run being filled (wiped when destroyed)
  crypto::Bytes sealed;
  size_t filled = 0;     // bytes of `plain` in use
  uint64_t segment = 0;  // index of the first segment of the run being filled
  uint64_t written = 0;  // plaintext bytes accepted so far
  crypto::Sha256Hasher hash;
  Status dead;  // the first error; every later call returns it
  bool finished = false;

  ~Impl() { Discard(); }

  // A dead or abandoned writer leaves nothing behind.
  void Discard() {
    if (!finished && !tmp.empty()) {
      fd.reset();
      ::unlink(tmp.c_str());
      tmp.clear();
    }
  }

  // Segments in the run starting at `segment` (kRunSegments, or the rest).
  uint64_t RunCount() const {
    return std::min(kRunSegments, cipher->geometry().SegmentCount() - segment);
  }

  // Seals and writes the current run (full, or the last one).
  Status FlushRun() {
    const uint64_t count = RunCount();
    const format::Geometry& g = cipher->geometry();
    std::span<uint8_t> p = plain.span().first(filled);
    hash.Update(p);
    std::span<uint8_t> out(sealed.data(), static_cast<size_t>(g.RunSealedSize(segment, count)));
    RETURN_IF_ERROR(cipher->SealRun(segment, count, p, out));
    RETURN_IF_ERROR(WriteFull(fd.get(), out));
    OPENSSL_cleanse(plain.data(), filled);
    segment += count;
    filled = 0;
    return Status::Ok();
  }

  Status Write(crypto::ByteSpan piece) {
    const format::Geometry& g = cipher->geometry();
    if (piece.size() > g.plaintext_size - written) {
      return InvalidArgument("output of " + job_id + ": more than the announced " +
                             std::to_string(g.plaintext_size) + " bytes");
    }
    while (!piece.empty()) {
      const uint64_t count = RunCount();
      const auto run = static_cast<size_t>(g.RunPlainSize(segment, count));
      const size_t k = std::min(run - filled, piece.size());
      std::copy_n(piece.begin(), k, plain.data() + filled);
      filled += k;
      written += k;
      piece = piece.subspan(k);
      // A full run is sealed at once, except the last one, which Finish
      // seals (so an empty output still gets its one empty final segment).
      if (filled == run && segment + count < g.SegmentCount()) {
        RETURN_IF_ERROR(FlushRun());
      }
    }
    return Status::Ok();
  }

  StatusOr<StoredOutput> Finish(std::string_view expected_digest) {
    const format::Geometry& g = cipher->geometry();
    if (written != g.plaintext_size) {
      return InvalidArgument("output of " + job_id + ": " + std::to_string(written) +
                             " bytes received, " + std::to_string(g.plaintext_size) + " announced");
    }
    RETURN_IF_ERROR(FlushRun());
    const std::string digest = "sha256:" + crypto::ToHex(hash.Finish());
    if (!expected_digest.empty() && digest != expected_digest) {
      return InvalidArgument("output of " + job_id + ": the bytes received hash to " + digest +
                             ", not the announced " + std::string(expected_digest));
    }
    if (::fsync(fd.get()) != 0) return ErrnoStatus(tmp + ": fsync", errno);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(path + ": rename", errno);
    finished = true;
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d.valid() || ::fsync(d.get()) != 0) return ErrnoStatus(dir + ": fsync", errno);
    return StoredOutput{"outputs/" + job_id + ".sealed", written, digest};
  }
};

OutputWriter::OutputWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OutputWriter::~OutputWriter() = default;

uint64_t OutputWriter::written() const {
  return impl_->written;
}

Status OutputWriter::Write(crypto::ByteSpan piece) {
  if (!impl_->dead.ok()) return impl_->dead;
  if (impl_->finished) return FailedPrecondition("output of " + impl_->job_id + ": finished");
  Status s = impl_->Write(piece);
  if (!s.ok()) {
    impl_->dead = s;
    impl_->Discard();
  }
  return s;
}

StatusOr<StoredOutput> OutputWriter::Finish(std::string_view expected_digest) {
  if (!impl_->dead.ok()) return impl_->dead;
  if (impl_->finished) return FailedPrecondition("output of " + impl_->job_id + ": finished");
  auto stored = impl_->Finish(expected_digest);
  if (!stored.ok()) {
    impl_->dead = stored.status();
    impl_->Discard();
  }
  return stored;
}

StatusOr<std::unique_ptr<OutputWriter>> OutputStore::Create(const std::string& job_id,
                                                            uint64_t size) {
  RETURN_IF_ERROR(CheckJobId(job_id));
  ASSIGN_OR_RETURN(format::DatasetKey key, format::DatasetKey::Generate());
  ASSIGN_OR_RETURN(crypto::Bytes wrapped, mk_->Seal(key.bytes(), Context(job_id)));
  if (wrapped.size() > kMaxWrappedKeyBytes) return Internal("output: sealed key too long");
  auto w = std::make_unique<OutputWriter::Impl>();
  w->dir = dir_;
  w->job_id = job_id;
  w->path = PathFor(job_id);
  ASSIGN_OR_RETURN(format::FileCipher cipher,
                   format::FileCipher::ForWriting(key, format::FileKind::kData, size));
  w->cipher = std::make_unique<format::FileCipher>(std::move(cipher));

  crypto::Bytes prefix(kOutputMagic.begin(), kOutputMagic.end());
  prefix.push_back(static_cast<uint8_t>(wrapped.size() >> 8));
  prefix.push_back(static_cast<uint8_t>(wrapped.size() & 0xff));
  prefix.insert(prefix.end(), wrapped.begin(), wrapped.end());
  prefix.insert(prefix.end(), w->cipher->header_bytes().begin(), w->cipher->header_bytes().end());

  std::array<uint8_t, 8> rnd{};
  RETURN_IF_ERROR(crypto::RandomBytes(rnd));
  const std::string tmp = dir_ + "/." + job_id + ".partial-" + crypto::ToHex(rnd);
  w->fd = UniqueFd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!w->fd.valid()) return ErrnoStatus(tmp, errno);
  w->tmp = tmp;  // from here on, the Impl removes it unless Finish succeeds
  const format::Geometry& g = w->cipher->geometry();
  w->plain = crypto::SecretBytes(kRunSegments * g.segment_size);
  w->sealed.resize(kRunSegments * (g.segment_size + format::kTagSize));
  RETURN_IF_ERROR(WriteFull(w->fd.get(), prefix));
  return std::unique_ptr<OutputWriter>(new OutputWriter(std::move(w)));
}

StatusOr<OutputStore::Stored> OutputStore::Put(const std::string& job_id, uint64_t size,
                                               const Source& source) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputWriter> writer, Create(job_id, size));
  // Pulled a run at a time into one locked buffer, wiped on the way out.
  constexpr size_t kPiece = kRunSegments * format::kBlockSize;
  crypto::SecretBytes piece(static_cast<size_t>(std::min<uint64_t>(size, kPiece)));
  uint64_t left = size;
  while (left > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, piece.size()));
    RETURN_IF_ERROR(source(piece.span().first(n)));
    RETURN_IF_ERROR(writer->Write(piece.span().first(n)));
    left -= n;
  }
  return writer->Finish();
}

StatusOr<std::string> OutputStore::Put(const std::string& job_id, crypto::ByteSpan bundle) {
  size_t at = 0;
  ASSIGN_OR_RETURN(Stored stored, Put(job_id, bundle.size(), [&](std::span<uint8_t> out) {
                     std::copy_n(bundle.begin() + static_cast<std::ptrdiff_t>(at), out.size(),
                                 out.begin());
                     at += out.size();
                     return Status::Ok();
                   }));
  return stored.blob_ref;
}

StatusOr<std::unique_ptr<OutputReader>> OutputStore::Open(const std::string& job_id,
                                                          const std::string& expected_digest) {
  RETURN_IF_ERROR(CheckJobId(job_id));
  const std::string what = "output of " + job_id;
  auto impl = std::make_unique<OutputReader::Impl>();
  impl->job_id = job_id;
  impl->expected_digest = expected_digest;
  impl->fd = UniqueFd(::open(PathFor(job_id).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!impl->fd.valid()) return DataLoss(what + ": " + ErrnoStatus("sealed file", errno).message());
  const int fd = impl->fd.get();
  std::array<uint8_t, kOutputMagic.size() + 2> lead{};
  ASSIGN_OR_RETURN(size_t got, PreadFull(fd, lead, 0));
  if (got >= 1 && lead[0] == kLegacyVersionByte) {
    return FailedPrecondition(what +
                              ": stored in the unsegmented format of earlier plane builds, "
                              "which this build does not read (pre-release; re-run the job)");
  }
  if (got != lead.size() || !std::equal(kOutputMagic.begin(), kOutputMagic.end(), lead.begin())) {
    return DataLoss(what + ": byte 0: not a sealed output (bad magic)");
  }
  const size_t wrapped_size = (size_t{lead[8]} << 8) | lead[9];
  if (wrapped_size == 0 || wrapped_size > kMaxWrappedKeyBytes) {
    return DataLoss(what + ": byte 8: sealed key length " + std::to_string(wrapped_size) +
                    ", expected 1.." + std::to_string(kMaxWrappedKeyBytes));
  }
  crypto::Bytes head(wrapped_size + format::kHeaderSize);
  ASSIGN_OR_RETURN(got, PreadFull(fd, head, lead.size()));
  if (got != head.size()) return DataLoss(what + ": truncated before its segments");
  auto key_bytes = mk_->Open(crypto::ByteSpan(head.data(), wrapped_size), Context(job_id));
  if (!key_bytes.ok()) return DataLoss(what + ": sealed key: " + key_bytes.status().message());
  ASSIGN_OR_RETURN(format::DatasetKey key, format::DatasetKey::FromBytes(key_bytes->span()));
  auto cipher = format::FileCipher::ForReading(
      key, crypto::ByteSpan(head.data() + wrapped_size, format::kHeaderSize),
      format::FileKind::kData);
  if (!cipher.ok()) return DataLoss(what + ": " + cipher.status().message());
  impl->cipher = std::make_unique<format::FileCipher>(std::move(cipher).value());
  impl->base = lead.size() + wrapped_size;
  const format::Geometry& g = impl->cipher->geometry();
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(what, errno);
  const uint64_t expected_size = impl->base + g.CiphertextSize();
  if (static_cast<uint64_t>(st.st_size) != expected_size) {
    return DataLoss(what + ": sealed file is " + std::to_string(st.st_size) + " bytes, expected " +
                    std::to_string(expected_size) + " (truncated or extended)");
  }
  impl->plain = crypto::SecretBytes(kRunSegments * g.segment_size);
  impl->sealed.resize(kRunSegments * (g.segment_size + format::kTagSize));
  // The first run is authenticated now, so a damaged small output is an
  // error before a response has started.
  ASSIGN_OR_RETURN(impl->pending_size, impl->ReadRun());
  impl->pending = true;
  return std::unique_ptr<OutputReader>(new OutputReader(std::move(impl)));
}

StatusOr<crypto::SecretBytes> OutputStore::Get(const std::string& job_id) {
  ASSIGN_OR_RETURN(std::unique_ptr<OutputReader> reader, Open(job_id, ""));
  if (reader->size() > kMaxGetBytes) {
    return FailedPrecondition("output of " + job_id + ": too large to read into memory");
  }
  crypto::SecretBytes out(static_cast<size_t>(reader->size()));
  size_t at = 0;
  for (;;) {
    ASSIGN_OR_RETURN(crypto::ByteSpan piece, reader->Next());
    if (piece.empty()) break;
    std::copy(piece.begin(), piece.end(), out.data() + at);
    at += piece.size();
  }
  return out;
}

}  // namespace cce::plane

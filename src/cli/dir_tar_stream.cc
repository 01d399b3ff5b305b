#include "cli/dir_tar_stream.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

namespace cce::cli {
namespace {

constexpr size_t kBlock = 512;

// `value` in octal, zero-padded to width-1 digits and a NUL.
void Octal(char* field, size_t width, uint64_t value) {
  std::string digits(width - 1, '0');
  for (size_t i = width - 1; i-- > 0 && value != 0; value >>= 3) {
    digits[i] = static_cast<char>('0' + (value & 7));
  }
  std::memcpy(field, digits.data(), width - 1);
  field[width - 1] = '\0';
}

std::string Block(const std::string& name, char type, uint64_t size, uint32_t mode) {
  std::string b(kBlock, '\0');
  std::memcpy(b.data(), name.data(), std::min<size_t>(name.size(), 100));
  Octal(&b[100], 8, mode);
  Octal(&b[108], 8, 0);          // uid
  Octal(&b[116], 8, 0);          // gid
  Octal(&b[124], 12, size);      // size
  Octal(&b[136], 12, 0);         // mtime: 0, so the same tree gives the same tar
  std::memset(&b[148], ' ', 8);  // checksum, counted as spaces
  b[156] = type;
  std::memcpy(&b[257], "ustar", 6);
  std::memcpy(&b[263], "00", 2);
  unsigned sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  Octal(&b[148], 7, sum);  // six digits and a NUL, then the space
  b[155] = ' ';
  return b;
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  // "<len> key=value\n" where <len> counts itself.
  const size_t base = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = base + 1;
  while (std::to_string(len).size() + base != len) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

std::string Padding(uint64_t size) {
  return std::string((kBlock - size % kBlock) % kBlock, '\0');
}

}  // namespace

std::string TarHeaders(const std::string& path, bool is_dir, uint64_t size) {
  const std::string name = is_dir ? path + "/" : path;
  std::string out;
  if (name.size() > 100) {
    const std::string pax = PaxRecord("path", name);
    out += Block("PaxHeaders/" + name.substr(name.size() - 60), 'x', pax.size(), 0644);
    out += pax + Padding(pax.size());
  }
  out += Block(name, is_dir ? '5' : '0', is_dir ? 0 : size, is_dir ? 0755 : 0644);
  return out;
}

StatusOr<DirTarStream> DirTarStream::Open(const std::string& dir, size_t max_path_bytes) {
  DirTarStream s;
  s.dir_ = dir;
  while (s.dir_.size() > 1 && s.dir_.back() == '/') s.dir_.pop_back();
  struct stat top {};
  if (::stat(s.dir_.c_str(), &top) != 0) return ErrnoStatus(dir, errno);
  if (!S_ISDIR(top.st_mode)) return InvalidArgument(dir + ": not a directory");
  // Depth first, names sorted: a directory comes before what it holds.
  std::function<Status(const std::string&)> walk = [&](const std::string& rel) -> Status {
    const std::string host = rel.empty() ? s.dir_ : s.dir_ + "/" + rel;
    DIR* d = ::opendir(host.c_str());
    if (d == nullptr) return ErrnoStatus(host, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      const std::string child = rel.empty() ? n : rel + "/" + n;
      const std::string child_host = s.dir_ + "/" + child;
      struct stat st {};
      if (::lstat(child_host.c_str(), &st) != 0) return ErrnoStatus(child_host, errno);
      if (child.size() > max_path_bytes) {
        return InvalidArgument(child_host + ": a path of " + std::to_string(child.size()) +
                               " bytes in the sample, at most " + std::to_string(max_path_bytes));
      }
      if (S_ISDIR(st.st_mode)) {
        s.members_.push_back({child, true, 0});
        RETURN_IF_ERROR(walk(child));
      } else if (S_ISREG(st.st_mode)) {
        if (static_cast<uint64_t>(st.st_size) >= (uint64_t{1} << 33)) {
          return InvalidArgument(child_host + ": 8 GiB or more, too large for a sample file");
        }
        s.members_.push_back({child, false, static_cast<uint64_t>(st.st_size)});
        s.total_file_bytes_ += static_cast<uint64_t>(st.st_size);
        ++s.file_count_;
      } else {
        return InvalidArgument(child_host + ": " +
                               (S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file") +
                               "; a sample holds regular files and directories only");
      }
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(walk(""));
  return s;
}

Status DirTarStream::NextMember() {
  if (next_ >= members_.size()) {
    pending_.assign(2 * kBlock, '\0');
    pending_off_ = 0;
    ended_ = true;
    return Status::Ok();
  }
  const Member& m = members_[next_++];
  pending_ = TarHeaders(m.path, m.is_dir, m.size);
  pending_off_ = 0;
  if (!m.is_dir) {
    file_path_ = dir_ + "/" + m.path;
    file_ = UniqueFd(::open(file_path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!file_.valid()) return ErrnoStatus(file_path_, errno);
    struct stat st {};
    if (::fstat(file_.get(), &st) != 0) return ErrnoStatus(file_path_, errno);
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != m.size) {
      return FailedPrecondition(file_path_ + ": changed while the sample was being sent");
    }
    file_left_ = m.size;
    file_pad_ = (kBlock - m.size % kBlock) % kBlock;
    ++files_sent_;
  }
  return Status::Ok();
}

StatusOr<size_t> DirTarStream::Read(std::span<uint8_t> buf) {
  size_t n = 0;
  while (n < buf.size()) {
    if (pending_off_ < pending_.size()) {
      const size_t k = std::min(pending_.size() - pending_off_, buf.size() - n);
      std::memcpy(buf.data() + n, pending_.data() + pending_off_, k);
      pending_off_ += k;
      n += k;
      continue;
    }
    if (file_.valid() && file_left_ > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(file_left_, buf.size() - n));
      const ssize_t r = ::read(file_.get(), buf.data() + n, want);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(file_path_, errno);
      }
      if (r == 0)
        return FailedPrecondition(file_path_ + ": shrank while the sample was being sent");
      file_left_ -= static_cast<uint64_t>(r);
      file_bytes_sent_ += static_cast<uint64_t>(r);
      n += static_cast<size_t>(r);
      continue;
    }
    if (file_.valid()) {
      file_.reset();
      pending_.assign(file_pad_, '\0');
      pending_off_ = 0;
      continue;
    }
    if (ended_) break;
    RETURN_IF_ERROR(NextMember());
  }
  return n;
}

}  // namespace cce::cli

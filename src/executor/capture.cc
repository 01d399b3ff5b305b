#include "executor/capture.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace cce::executor {

StatusOr<CappedSink> CappedSink::Create(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) return AlreadyExists("capture: " + path + " already exists");
    return ErrnoStatus("capture: create " + path, errno);
  }
  return CappedSink(path, std::move(fd), max_bytes);
}

Status CappedSink::Write(std::span<const uint8_t> data) {
  if (!fd_.valid()) return FailedPrecondition("capture: " + path_ + " is closed");
  total_ += data.size();
  uint64_t room = max_ - written_;
  size_t n = static_cast<size_t>(std::min<uint64_t>(room, data.size()));
  if (n == 0) return Status::Ok();
  RETURN_IF_ERROR(WriteFull(fd_.get(), data.first(n)).WithContext("capture: " + path_));
  written_ += n;
  return Status::Ok();
}

Status CappedSink::Drain(int fd) {
  uint8_t buf[16384];
  // After a failed write keep reading (and dropping), so the writer never
  // blocks on a full pipe; the first error is returned at EOF.
  Status first;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p {
          fd, POLLIN, 0
        };
        ::poll(&p, 1, -1);
        continue;
      }
      return ErrnoStatus("capture: read for " + path_, errno);
    }
    if (n == 0) return first;
    Status s = Write(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    if (!s.ok() && first.ok()) first = s;
  }
}

Status CappedSink::Close() {
  if (!fd_.valid()) return Status::Ok();
  if (::fsync(fd_.get()) != 0) return ErrnoStatus("capture: fsync " + path_, errno);
  fd_.reset();
  return Status::Ok();
}

}  // namespace cce::executor

#include "plane/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"

namespace cce::plane {
namespace {
constexpr std::string_view kSigningLabel = "cce4long-ed25519-seed-v1";
}  // namespace

Status WriteSecretKeyFile(const std::string& path, std::string_view label,
                          const crypto::SecretBytes& key) {
  // Build the line in locked memory; the key never sits in a std::string.
  crypto::SecretBytes text(label.size() + 1 + 2 * key.size() + 1);
  uint8_t* p = std::copy(label.begin(), label.end(), text.data());
  *p++ = ' ';
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : key.span()) {
    *p++ = static_cast<uint8_t>(kDigits[b >> 4]);
    *p++ = static_cast<uint8_t>(kDigits[b & 15]);
  }
  *p = '\n';
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoStatus("create " + path, errno);
  Status s = WriteFull(fd.get(), text.span());
  if (s.ok() && ::fsync(fd.get()) != 0) s = ErrnoStatus(path, errno);
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

StatusOr<crypto::SecretBytes> ReadSecretKeyFile(const std::string& path, std::string_view label,
                                                size_t key_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus(path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    (void)std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return PermissionDenied(path + ": mode " + mode +
                            " lets other users read a secret key; expected 0600");
  }
  if (st.st_uid != ::geteuid()) return PermissionDenied(path + ": not owned by this user");
  const size_t expected = label.size() + 1 + 2 * key_size + 1;
  crypto::SecretBytes buf(expected + 1);
  size_t len = 0;
  while (len < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + len, buf.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(path, errno);
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  std::string_view text(reinterpret_cast<const char*>(buf.data()), len);
  if (len != expected || text.substr(0, label.size()) != label || text[label.size()] != ' ' ||
      text.back() != '\n') {
    return InvalidArgument(path + ": expected one line \"" + std::string(label) + " <" +
                           std::to_string(2 * key_size) + " hex digits>\"");
  }
  auto key = crypto::SecretFromHex(text.substr(label.size() + 1, 2 * key_size));
  if (!key.ok()) return key.status().WithContext(path);
  return std::move(*key);
}

Status CreateSigningKey(const std::string& path) {
  ASSIGN_OR_RETURN(crypto::SecretBytes seed, crypto::RandomSecret(32));
  return WriteSecretKeyFile(path, kSigningLabel, seed);
}

StatusOr<crypto::Ed25519PrivateKey> LoadSigningKey(const std::string& path) {
  ASSIGN_OR_RETURN(crypto::SecretBytes seed, ReadSecretKeyFile(path, kSigningLabel, 32));
  return crypto::Ed25519PrivateKey::FromSeed(seed.span());
}

}  // namespace cce::plane

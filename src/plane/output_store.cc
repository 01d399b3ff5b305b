#include "plane/output_store.h"

#include <sys/stat.h>

#include <cerrno>

#include "base/fd.h"

namespace cce::plane {
namespace {

constexpr size_t kMaxSealedBytes = size_t{1} << 31;

std::string Context(const std::string& job_id) {
  return "output:" + job_id;
}

}  // namespace

StatusOr<OutputStore> OutputStore::Open(const std::string& dir, MasterKey& master_key) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(dir, errno);
  return OutputStore(dir, master_key);
}

std::string OutputStore::PathFor(const std::string& job_id) const {
  return dir_ + "/" + job_id + ".sealed";
}

StatusOr<std::string> OutputStore::Put(const std::string& job_id, crypto::ByteSpan bundle) {
  if (job_id.empty() || job_id.find_first_of("/.") != std::string::npos) {
    return InvalidArgument("output: job id '" + job_id + "' is not a plain name");
  }
  ASSIGN_OR_RETURN(crypto::Bytes sealed, mk_->Seal(bundle, Context(job_id)));
  RETURN_IF_ERROR(WriteFileAtomic(PathFor(job_id), sealed, 0600));
  return "outputs/" + job_id + ".sealed";
}

StatusOr<crypto::SecretBytes> OutputStore::Get(const std::string& job_id) {
  if (job_id.empty() || job_id.find_first_of("/.") != std::string::npos) {
    return InvalidArgument("output: job id '" + job_id + "' is not a plain name");
  }
  auto sealed = ReadFile(PathFor(job_id), kMaxSealedBytes);
  if (!sealed.ok()) return DataLoss("output of " + job_id + ": " + sealed.status().message());
  return mk_->Open(crypto::AsBytes(*sealed), Context(job_id));
}

}  // namespace cce::plane

#include "agent/quote_provider.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"

namespace cce::agent {
namespace {

constexpr size_t kMaxQuoteBytes = size_t{64} << 10;

StatusOr<std::string> ReadSmall(const std::string& path) {
  ASSIGN_OR_RETURN(std::string s, ReadFile(path, kMaxQuoteBytes));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

class ConfigfsTsmProvider : public QuoteProvider {
 public:
  ConfigfsTsmProvider(std::string root, std::function<void(const std::string&)> after_mkdir)
      : root_(std::move(root)), after_mkdir_(std::move(after_mkdir)) {}
  std::string name() const override { return "configfs-tsm"; }
  bool simulated() const override { return false; }

  StatusOr<crypto::Bytes> GetQuote(const ReportData& report_data) override {
    std::array<uint8_t, 8> id{};
    RETURN_IF_ERROR(crypto::RandomBytes(id));
    const std::string dir = root_ + "/cce-" + crypto::ToHex(id);
    if (::mkdir(dir.c_str(), 0700) != 0) {
      return Status(StatusCode::kUnavailable,
                    "configfs-tsm: cannot create " + dir + ": " + std::strerror(errno) +
                        " (is this a TDX guest with configfs mounted at /sys/kernel/config?)");
    }
    if (after_mkdir_) after_mkdir_(dir);
    auto result = Run(dir, report_data);
    ::rmdir(dir.c_str());
    return result;
  }

 private:
  static StatusOr<crypto::Bytes> Run(const std::string& dir, const ReportData& report_data) {
    // The kernel fills `provider` when the entry is created.
    auto provider = ReadSmall(dir + "/provider");
    if (provider.ok() && *provider != "tdx_guest") {
      return FailedPrecondition("configfs-tsm: provider is '" + *provider +
                                "', expected tdx_guest");
    }
    {
      UniqueFd fd(::open((dir + "/inblob").c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus(dir + "/inblob", errno);
      RETURN_IF_ERROR(WriteFull(fd.get(), report_data));
    }
    ASSIGN_OR_RETURN(std::string before, ReadSmall(dir + "/generation"));
    ASSIGN_OR_RETURN(std::string quote, ReadFile(dir + "/outblob", kMaxQuoteBytes));
    ASSIGN_OR_RETURN(std::string after, ReadSmall(dir + "/generation"));
    if (before != after) {
      return Status(StatusCode::kUnavailable,
                    "configfs-tsm: report entry changed while reading (generation " + before +
                        " -> " + after + "); retry");
    }
    if (quote.empty()) return Status(StatusCode::kUnavailable, "configfs-tsm: empty outblob");
    return crypto::Bytes(quote.begin(), quote.end());
  }

  std::string root_;
  std::function<void(const std::string&)> after_mkdir_;
};

}  // namespace

std::unique_ptr<QuoteProvider> MakeConfigfsTsmProvider(
    std::string root, std::function<void(const std::string&)> after_mkdir) {
  return std::make_unique<ConfigfsTsmProvider>(std::move(root), std::move(after_mkdir));
}

}  // namespace cce::agent

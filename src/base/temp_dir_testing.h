// Tests only: a fresh directory under the system temp directory, removed
// with everything in it when the object goes out of scope. Header-only, so
// any test can use it without a link dependency.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cce::testing {

class TempDir {
 public:
  // `prefix` names the test in the directory name ("cce-<prefix>-XXXXXX").
  explicit TempDir(std::string_view prefix) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / ("cce-" + std::string(prefix) + "-XXXXXX"))
            .string();
    // gtest reports an exception from a test body or fixture as that test's failure.
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("TempDir: mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cce::testing

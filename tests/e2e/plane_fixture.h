// A real cce-plane for end-to-end tests: `cce-plane init` in a temp dir,
// optional config edits, `cce-plane serve` as a child process on a free
// loopback port, users added with `cce-plane user add`, and `cce` run with
// HOME pointing into the temp dir so logins stay private to the test.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace cce::e2e {

class PlaneFixture {
 public:
  // `provisioner`: "none", "fake" or "local" (written into plane.yaml before
  // serving). `simulated_tee`: `init --simulated-tee` (local jobs attest with
  // the development chain).
  explicit PlaneFixture(const std::string& provisioner = "none", bool simulated_tee = false);
  ~PlaneFixture();
  PlaneFixture(const PlaneFixture&) = delete;
  PlaneFixture& operator=(const PlaneFixture&) = delete;

  bool up() const { return up_; }
  const TempDir& dir() const { return t_; }
  std::string data_dir() const { return t_ / "plane"; }
  const std::string& url() const { return url_; }
  const std::string& ca() const { return ca_; }
  const std::string& operator_token() const { return op_token_; }
  BackgroundProcess& server() { return *server_; }

  // `cce-plane user add`; returns the new token ("" on failure, with a test failure).
  std::string AddUser(const std::string& name, const std::string& role);
  // `cce login` as the owner of `token`; true on success.
  bool Login(const std::string& token);
  // Runs `cce ARGS...`.
  CommandResult Cce(std::vector<std::string> args);
  // Stops the server with SIGTERM; returns its exit code.
  int Stop();

 private:
  TempDir t_;
  std::string url_, ca_, op_token_;
  std::unique_ptr<BackgroundProcess> server_;
  bool up_ = false;
};

// Writes an OCI image layout with one uncompressed layer (a real tar made by
// tar(1), with a 2 MiB file) tagged `ref`, under `dir`; scratch files go in
// `t`. Returns the manifest's digest ("sha256:...").
std::string WriteOciLayout(const TempDir& t, const std::string& dir, const std::string& ref);

}  // namespace cce::e2e

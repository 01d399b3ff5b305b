// Test support for the plane (library cce_plane_testing, linked by tests and
// benchmarks only): serve with a test double for the Output Gate or the
// provisioner, or run a whole plane over TLS in the test's process
// (TestPlane). Production binaries cannot reach this.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "base/clock.h"
#include "base/status.h"
#include "format/format.h"
#include "http/test_client.h"
#include "plane/gate.h"
#include "plane/plane.h"
#include "plane/provisioner.h"

namespace cce::plane {

struct TestDoubles {
  Gate* gate = nullptr;                // replaces the fail-closed gate
  Provisioner* provisioner = nullptr;  // replaces the configured provisioner
  // > 0: the fake provisioner (provisioner.backend: fake) submits outputs of
  // this many bytes, generated and sealed segment by segment.
  uint64_t fake_output_bytes = 0;
};

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles);

// Stores `manifest` in the image store of the plane at data_dir (safe while
// the server runs) and tags it as the public image library/test:TAG, so any
// consumer may name it in a job by its digest, which is returned. The
// manifest is not validated: for tests of what happens after submission.
StatusOr<std::string> AddPublicTestImage(const std::string& data_dir, const std::string& tag,
                                         const std::string& manifest, const Clock& clock);

// An OCI image whose layer is opaque bytes (the plane checks digests, sizes
// and the config, not the tar inside an uncompressed layer). The layer is
// `layer_bytes` of a fixed pattern starting with `seed`, so different seeds
// make different images.
struct TestImage {
  std::string layer;
  std::string config;
  std::string manifest;
  std::string layer_digest() const;
  std::string config_digest() const;
  std::string manifest_digest() const;
};
TestImage MakeTestImage(const std::string& seed, size_t layer_bytes = 1000);

// The system clock moved by `offset` seconds, which a test may change at any
// time (to expire a nonce, a session or a rental).
class TestClock : public Clock {
 public:
  int64_t NowUnix() const override { return static_cast<int64_t>(std::time(nullptr)) + offset; }
  std::atomic<int64_t> offset{0};
};

// A provisioner that keeps the credential the job engine hands each job's
// "VM" and starts nothing: the test then plays the agent with it.
class CapturingProvisioner : public Provisioner {
 public:
  std::string name() const override { return "capture"; }
  Status Provision(const store::Job& job, const std::string& credential) override;
  Status Resume(const store::Job&) override { return Status::Ok(); }
  // The credential handed for `job_id`; "" while none was.
  std::string Get(const std::string& job_id) const;
  // Get(job_id) once it is not "" or `timeout` has passed.
  std::string WaitFor(const std::string& job_id,
                      std::chrono::milliseconds timeout = std::chrono::seconds(4)) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> credentials_;  // job id -> credential; guarded by mu_
};

struct TestPlaneOptions {
  std::string dir_prefix = "cce-test-plane";  // of the temporary directory's name
  bool simulated_tee = false;                 // InitOptions::simulated_tee
  // datasets.allowed_roots: ["tmp()"], so a test may register datasets it
  // encrypts into tmp() (outside the default root).
  bool datasets_in_tmp = false;
};

// A whole plane over TLS on a loopback port, in the test's process: a data
// directory from InitPlane (listen 127.0.0.1:0) in a fresh temporary
// directory, whose plane.yaml the test may edit, served on a thread by the
// production Serve or by ServeForTest with test doubles.
class TestPlane {
 public:
  // Errors: those of mkdtemp, InitPlane and SetConfig. `clock` must outlive
  // the plane.
  static StatusOr<std::unique_ptr<TestPlane>> Create(const Clock& clock,
                                                     const TestPlaneOptions& options = {});
  // Stops the server (Stop) and removes the temporary directory.
  ~TestPlane();
  TestPlane(const TestPlane&) = delete;
  TestPlane& operator=(const TestPlane&) = delete;

  // The temporary directory; the plane's data directory is tmp()/plane.
  const std::string& tmp() const { return tmp_; }
  const InitResult& init() const { return init_; }

  // Sets `key` in plane.yaml to `value` (YAML text, written as is), its
  // comment dropped: a top-level key ("credential_ttl_seconds") or one of a
  // top-level section ("limits.max_output_bytes"), as InitPlane writes them.
  // Read at the next Start. kNotFound naming the file and `key` when
  // plane.yaml has no such line; kIo when it cannot be written.
  Status SetConfig(std::string_view key, std::string_view value);

  // Serves on a thread: with `doubles` through ServeForTest, without through
  // the production Serve. Returns once the server listens; a Start after a
  // Stop listens on the same port again. kUnavailable with the server's own
  // error when it ends before listening or is not listening within 10 s;
  // kFailedPrecondition when already running.
  Status Start(const std::optional<TestDoubles>& doubles = std::nullopt);
  // Asks the server to stop gracefully and waits for it; no-op when stopped.
  void Stop();
  bool running() const { return server_.joinable(); }

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  // What the last server returned; read it after Stop.
  const Status& serve_status() const { return serve_status_; }
  // A client for port() trusting the plane's CA.
  std::unique_ptr<http::testing::TestClient> Client() const;

  // Over the API of the running plane: `provider_token` registers dataset
  // `name` (one file, a.csv, encrypted here under a new key into
  // tmp()/enc-<name>, so datasets_in_tmp is needed) and `consumer_token`
  // rents it for one day. Returns the dataset's key. Errors: those of the
  // encryption; kUnavailable naming the request and the plane's reply when
  // either request does not answer 201.
  StatusOr<format::DatasetKey> AddRentedDataset(const std::string& name,
                                                const std::string& provider_token,
                                                const std::string& consumer_token) const;

 private:
  explicit TestPlane(const Clock& clock) : clock_(clock) {}

  const Clock& clock_;
  std::string tmp_;
  InitResult init_;
  std::atomic<bool> stop_{false};
  std::thread server_;
  Status serve_status_;  // written by server_, read after it is joined
  int port_ = 0;         // 0 until the first Start
};

// {"Authorization": "Bearer <token>"}, for TestClient requests.
http::testing::Headers BearerAuth(const std::string& token);

}  // namespace cce::plane

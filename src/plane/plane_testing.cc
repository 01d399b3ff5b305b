#include "plane/plane_testing.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <system_error>

#include "base/fd.h"
#include "image/blob_store.h"
#include "image/image.h"
#include "plane/config.h"
#include "plane/serve_internal.h"
#include "store/sqlite_store.h"

namespace cce::plane {

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles) {
  return ServeWith(options, clock, doubles.gate, doubles.provisioner, doubles.fake_output_bytes);
}

StatusOr<std::string> AddPublicTestImage(const std::string& data_dir, const std::string& tag,
                                         const std::string& manifest, const Clock& clock) {
  ASSIGN_OR_RETURN(auto blobs, image::BlobStore::Create(data_dir + "/images"));
  ASSIGN_OR_RETURN(image::Digest digest, blobs.PutBytes(manifest, image::Digest::Of(manifest)));
  ASSIGN_OR_RETURN(PlaneConfig c, LoadConfig(data_dir));
  store::SqliteStoreOptions so;
  so.path = c.Path(c.database_path);
  so.checkpoint_file = c.Path(c.audit_checkpoint_file);
  ASSIGN_OR_RETURN(auto db, store::SqliteStore::Open(so));
  ASSIGN_OR_RETURN(auto users, db->ListUsers());
  auto op = std::find_if(users.begin(), users.end(),
                         [](const store::User& u) { return u.role == store::Role::kOperator; });
  if (op == users.end()) return FailedPrecondition("no operator to own the test image");
  store::Image img{"library/test", tag, digest.str(), op->id, clock.NowUnix(), true};
  store::AuditRecord audit;
  audit.at = clock.NowUnix();
  audit.actor = "test";
  audit.action = "image.push";
  audit.object = "image:library/test:" + tag;
  RETURN_IF_ERROR(db->PutImage(img, audit).status());
  return digest.str();
}

std::string TestImage::layer_digest() const {
  return image::Digest::Of(layer).str();
}
std::string TestImage::config_digest() const {
  return image::Digest::Of(config).str();
}
std::string TestImage::manifest_digest() const {
  return image::Digest::Of(manifest).str();
}

TestImage MakeTestImage(const std::string& seed, size_t layer_bytes) {
  using nlohmann::json;
  TestImage img;
  img.layer.resize(layer_bytes);
  for (size_t i = 0; i < layer_bytes; ++i) {
    img.layer[i] = static_cast<char>('a' + (i * 7 + seed.size()) % 26);
  }
  img.layer.replace(0, std::min(seed.size(), layer_bytes), seed.substr(0, layer_bytes));
  const std::string layer_digest = img.layer_digest();
  img.config = json{{"architecture", "amd64"},
                    {"os", "linux"},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", {layer_digest}}}}}
                   .dump();
  img.manifest =
      json{
          {"schemaVersion", 2},
          {"mediaType", image::kOciManifest},
          {"config",
           {{"mediaType", image::kOciConfig},
            {"digest", img.config_digest()},
            {"size", img.config.size()}}},
          {"layers",
           {{{"mediaType", image::kOciLayerTar}, {"digest", layer_digest}, {"size", layer_bytes}}}}}
          .dump();
  return img;
}

Status CapturingProvisioner::Provision(const store::Job& job, const std::string& credential) {
  std::lock_guard<std::mutex> l(mu_);
  credentials_[job.id] = credential;
  return Status::Ok();
}

std::string CapturingProvisioner::Get(const std::string& job_id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = credentials_.find(job_id);
  return it == credentials_.end() ? "" : it->second;
}

std::string CapturingProvisioner::WaitFor(const std::string& job_id,
                                          std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::string credential = Get(job_id);
  while (credential.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    credential = Get(job_id);
  }
  return credential;
}

StatusOr<std::unique_ptr<TestPlane>> TestPlane::Create(const Clock& clock,
                                                       const TestPlaneOptions& options) {
  std::unique_ptr<TestPlane> p(new TestPlane(clock));
  std::string tmpl =
      (std::filesystem::temp_directory_path() / (options.dir_prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp " + tmpl, errno);
  p->tmp_ = tmpl;
  InitOptions o;
  o.data_dir = p->tmp_ + "/plane";
  o.listen = "127.0.0.1:0";
  o.simulated_tee = options.simulated_tee;
  ASSIGN_OR_RETURN(p->init_, InitPlane(o, clock));
  if (options.datasets_in_tmp) {
    RETURN_IF_ERROR(p->SetConfig("datasets.allowed_roots", "[\"" + p->tmp_ + "\"]"));
  }
  return p;
}

TestPlane::~TestPlane() {
  Stop();
  std::error_code ec;
  if (!tmp_.empty()) std::filesystem::remove_all(tmp_, ec);
}

Status TestPlane::SetConfig(std::string_view key, std::string_view value) {
  const std::string& path = init_.config_file;
  const size_t dot = key.find('.');
  const std::string_view section = dot == std::string_view::npos ? "" : key.substr(0, dot);
  const std::string prefix = dot == std::string_view::npos
                                 ? std::string(key) + ": "
                                 : "  " + std::string(key.substr(dot + 1)) + ": ";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  std::string_view current;  // the top-level section the line is in
  for (size_t pos = 0; pos < text.size();) {
    const size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string_view line(text.data() + pos, eol - pos);
    const bool top = !line.empty() && line[0] != ' ' && line[0] != '#';
    if (top) current = line.ends_with(':') ? line.substr(0, line.size() - 1) : "";
    if (top == section.empty() && current == section && line.starts_with(prefix)) {
      text.replace(pos, eol - pos, prefix + std::string(value));
      std::ofstream out(path, std::ios::trunc | std::ios::binary);
      out << text;
      out.close();
      if (!out) return Status(StatusCode::kIo, path + ": cannot write");
      return Status::Ok();
    }
    pos = eol + 1;
  }
  return NotFound(path + ": no " + std::string(key) + " to set");
}

Status TestPlane::Start(const std::optional<TestDoubles>& doubles) {
  if (running()) return FailedPrecondition("TestPlane::Start: the plane is already serving");
  stop_ = false;
  ServeOptions so;
  so.data_dir = init_.data_dir;
  if (port_ != 0) so.listen_override = "127.0.0.1:" + std::to_string(port_);
  so.stop = &stop_;
  // Set once: with the port when the server listens, or with -1 when it
  // ends without having listened (a bad plane.yaml, a port taken).
  struct Bound {
    std::atomic<bool> set{false};
    std::promise<int> port;
    void Set(int p) {
      if (!set.exchange(true)) port.set_value(p);
    }
  };
  auto bound = std::make_shared<Bound>();
  auto port = bound->port.get_future();
  so.on_listening = [bound](int p) { bound->Set(p); };
  server_ = std::thread([this, so, doubles, bound] {
    serve_status_ = doubles ? ServeForTest(so, clock_, *doubles) : Serve(so, clock_);
    bound->Set(-1);
  });
  if (port.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    Stop();
    return Unavailable("plane at " + init_.data_dir + ": not listening within 10 s (" +
                       serve_status_.message() + ")");
  }
  const int p = port.get();
  if (p < 0) {
    Stop();
    return Unavailable("plane at " + init_.data_dir + " did not start: " + serve_status_.message());
  }
  port_ = p;
  return Status::Ok();
}

void TestPlane::Stop() {
  if (!server_.joinable()) return;
  stop_ = true;
  server_.join();
}

std::unique_ptr<http::testing::TestClient> TestPlane::Client() const {
  return std::make_unique<http::testing::TestClient>(port_, init_.ca_file);
}

StatusOr<format::DatasetKey> TestPlane::AddRentedDataset(const std::string& name,
                                                         const std::string& provider_token,
                                                         const std::string& consumer_token) const {
  const std::string src = tmp_ + "/src-" + name, enc = tmp_ + "/enc-" + name;
  std::error_code ec;
  std::filesystem::create_directories(src, ec);
  if (ec) return Status(StatusCode::kIo, src + ": " + ec.message());
  {
    std::ofstream csv(src + "/a.csv");
    csv << "x\n1\n";
    if (!csv) return Status(StatusCode::kIo, src + "/a.csv: cannot write");
  }
  ASSIGN_OR_RETURN(format::DatasetKey key, format::DatasetKey::Generate());
  RETURN_IF_ERROR(format::EncryptDataset(src, enc, key, {}).status());
  const crypto::SecretBytes key_file = key.EncodeKeyFile();
  auto c = Client();
  const auto expect_created = [&c](const std::string& what,
                                   const http::testing::Result& r) -> Status {
    if (r && r->status == 201) return Status::Ok();
    return Unavailable(what + ": " +
                       (r ? std::to_string(r->status) + " " + r->body : c->error().message()));
  };
  RETURN_IF_ERROR(expect_created(
      "POST /api/v1/datasets " + name,
      c->Post("/api/v1/datasets", BearerAuth(provider_token),
              nlohmann::json{{"name", name},
                             {"location", "file://" + enc},
                             {"key", std::string(reinterpret_cast<const char*>(key_file.data()),
                                                 key_file.size())}}
                  .dump(),
              "application/json")));
  RETURN_IF_ERROR(expect_created(
      "POST /api/v1/rentals " + name,
      c->Post("/api/v1/rentals", BearerAuth(consumer_token),
              nlohmann::json{{"dataset", name}, {"days", 1}}.dump(), "application/json")));
  return key;
}

http::testing::Headers BearerAuth(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

}  // namespace cce::plane

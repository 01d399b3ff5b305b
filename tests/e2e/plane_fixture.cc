#include "e2e/plane_fixture.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "image/image.h"

namespace cce::e2e {

using nlohmann::json;

PlaneFixture::PlaneFixture(const std::string& provisioner, bool simulated_tee) {
  ::setenv("HOME", t_.path().c_str(), 1);
  ::unsetenv("XDG_CONFIG_HOME");
  for (const char* v : {"CCE_PLANE_URL", "CCE_TOKEN", "CCE_CA_FILE"}) ::unsetenv(v);
  const std::string listen = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  std::vector<std::string> init_args = {BinPath("cce-plane"), "init", "--data-dir", data_dir(),
                                        "--listen",           listen, "--output",   "json"};
  if (simulated_tee) init_args.push_back("--simulated-tee");
  auto init = RunCommand(init_args);
  if (init.exit_code != 0) {
    ADD_FAILURE() << "cce-plane init: " << init.err;
    return;
  }
  json ij = json::parse(init.out);
  op_token_ = ij["token"];
  ca_ = ij["ca_file"];
  {
    // Tests encrypt their datasets into the temp dir, outside the default
    // dataset root (DATA_DIR/datasets).
    std::string config = ReadFile(data_dir() + "/plane.yaml");
    size_t at = config.find("  allowed_roots: ");
    if (at == std::string::npos) {
      ADD_FAILURE() << "plane.yaml has no 'datasets: allowed_roots:' line";
      return;
    }
    config.replace(at, config.find('\n', at) - at, "  allowed_roots: [\"" + t_.path() + "\"]");
    WriteFile(data_dir() + "/plane.yaml", config);
  }
  if (provisioner != "none") {
    std::string config = ReadFile(data_dir() + "/plane.yaml");
    size_t at = config.find("  backend: none");
    if (at == std::string::npos) {
      ADD_FAILURE() << "plane.yaml has no 'provisioner: backend: none' line";
      return;
    }
    config.replace(at, 15, "  backend: " + provisioner);
    WriteFile(data_dir() + "/plane.yaml", config);
  }
  server_ = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{BinPath("cce-plane"), "serve", "--data-dir", data_dir()});
  url_ = "https://" + listen;
  for (int i = 0; i < 400 && !up_; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    up_ = Login(op_token_);
  }
  if (!up_) ADD_FAILURE() << "cce-plane did not come up: " << server_->Err();
}

PlaneFixture::~PlaneFixture() = default;  // BackgroundProcess kills a running server

std::string PlaneFixture::AddUser(const std::string& name, const std::string& role) {
  auto r = RunCommand({BinPath("cce-plane"), "user", "add", "--data-dir", data_dir(), "--role",
                       role, name, "--output", "json"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "user add " << name << ": " << r.err;
    return "";
  }
  return json::parse(r.out)["token"].get<std::string>();
}

bool PlaneFixture::Login(const std::string& token) {
  return Cce({"login", "--plane", url_, "--token", token, "--ca", ca_}).exit_code == 0;
}

CommandResult PlaneFixture::Cce(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("cce"));
  return RunCommand(args);
}

int PlaneFixture::Stop() {
  return server_ ? server_->Stop(SIGTERM, 10000) : -1;
}

namespace {

json Descriptor(const std::string& media_type, const std::string& data) {
  return {
      {"mediaType", media_type}, {"digest", image::Digest::Of(data).str()}, {"size", data.size()}};
}

}  // namespace

std::string WriteOciLayout(const TempDir& t, const std::string& dir, const std::string& ref) {
  std::string big(2u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  WriteFile(t / "rootfs/bin/tool", big);
  WriteFile(t / "rootfs/etc/motd", "hello from the image\n");
  auto tar = RunCommand({"tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                         "--numeric-owner", "-C", t / "rootfs", "-cf", t / "layer.tar", "."});
  EXPECT_EQ(tar.exit_code, 0) << tar.err;
  std::string layer = ReadFile(t / "layer.tar");
  std::string config =
      json{{"architecture", "amd64"},
           {"os", "linux"},
           {"config", {{"Cmd", {"/bin/tool"}}}},
           {"rootfs", {{"type", "layers"}, {"diff_ids", {image::Digest::Of(layer).str()}}}}}
          .dump();
  std::string manifest = json{{"schemaVersion", 2},
                              {"mediaType", image::kOciManifest},
                              {"config", Descriptor(image::kOciConfig, config)},
                              {"layers", {Descriptor(image::kOciLayerTar, layer)}}}
                             .dump();
  json desc = Descriptor(image::kOciManifest, manifest);
  desc["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  desc["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
  std::string index =
      json{{"schemaVersion", 2}, {"mediaType", image::kOciIndex}, {"manifests", {desc}}}.dump();
  WriteFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteFile(dir + "/index.json", index);
  for (const std::string* blob : {&layer, &config, &manifest}) {
    WriteFile(dir + "/blobs/sha256/" + std::string(image::Digest::Of(*blob).hex()), *blob);
  }
  return image::Digest::Of(manifest).str();
}

}  // namespace cce::e2e

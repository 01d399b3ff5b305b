#include "cli/plane_verb.h"

#include <ctime>
#include <iostream>

#include "cli/cli.h"

namespace cce::cli {

int WithPlane(const FlagParser& p, const Args& args, size_t positional, const PlaneBody& body) {
  int exit = 0;
  auto f = ParseOrExit(p, args, positional, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  auto config = LoadClientConfig();
  if (!config.ok()) return Fail(config.status());
  auto client = PlaneClient::Connect(*config);
  if (!client.ok()) return Fail(client.status());
  StatusOr<nlohmann::json> result = body(*f, *client, *json_out);
  if (!result.ok()) return Fail(result.status());
  if (*json_out) {
    if (result->is_array()) {
      for (const nlohmann::json& item : *result) std::cout << item.dump() << "\n";
    } else {
      std::cout << result->dump() << "\n";
    }
  }
  return kExitOk;
}

std::string FormatTime(int64_t unix) {
  std::time_t t = unix;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

nlohmann::json ListItems(const nlohmann::json& r, const char* key) {
  auto it = r.find(key);
  if (it == r.end() || !it->is_array()) return nlohmann::json::array();
  return *it;
}

void NoteNextPage(const std::string& what, const std::string& next_command) {
  std::cerr << "cce: more " << what << " may follow: " << next_command << "\n";
}

}  // namespace cce::cli

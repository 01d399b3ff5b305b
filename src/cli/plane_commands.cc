// `cce` verbs that talk to the Privacy Plane: login, the dataset catalog and
// rentals. Each prints text by default and one JSON object with
// --output json.
#include <openssl/crypto.h>

#include <ctime>
#include <filesystem>
#include <iostream>

#include "api/wire.h"
#include "cli/cli.h"
#include "cli/command.h"
#include "cli/eth_commands.h"
#include "cli/plane_client.h"
#include "cli/plane_verb.h"
#include "cli/sample_commands.h"
#include "cli/table.h"
#include "format/format.h"

namespace cce::cli {
namespace {

using nlohmann::json;

int Login(const Args& args) {
  FlagParser p("cce login --plane URL --token TOKEN --ca FILE",
               "Checks the credentials against the plane and saves them to\n"
               "~/.config/cce/config.yaml (mode 0600). TOKEN '-' reads it from stdin.",
               {{"plane", "URL", "https://HOST:PORT of the plane"},
                {"token", "TOKEN", "API token from `cce-plane init` / `user add`"},
                {"ca", "FILE", "the plane's CA certificate (DATA_DIR/tls/ca.crt)"},
                kOutputFlag});
  int exit = 0;
  auto f = ParseOrExit(p, args, 0, &exit);
  if (!f) return exit;
  auto json_out = JsonOutput(*f);
  if (!json_out.ok()) return Fail(json_out.status());
  ClientConfig c;
  for (const char* flag : {"plane", "token", "ca"}) {
    if (!f->Get(flag)) return Fail(InvalidArgument(std::string("--") + flag + " is required"));
  }
  c.plane_url = *f->Get("plane");
  c.token = *f->Get("token");
  if (c.token == "-" && !std::getline(std::cin, c.token)) {
    return Fail(InvalidArgument("--token -: no token on stdin"));
  }
  std::error_code ec;
  c.ca_file = std::filesystem::absolute(*f->Get("ca"), ec).string();
  auto client = PlaneClient::Connect(c);
  if (!client.ok()) return Fail(client.status());
  auto response = client->Get("/api/v1/whoami");
  if (!response.ok() && response.status().code() == StatusCode::kUnauthenticated) {
    return Fail(Status(StatusCode::kUnauthenticated,
                       response.status().message() +
                           " (check --token: `cce-plane init` prints the operator's token, "
                           "`cce-plane user add` a user's)"));
  }
  if (!response.ok()) return Fail(response.status());
  auto me = DecodeResponse<api::User>(*response, "GET /api/v1/whoami");
  if (!me.ok()) return Fail(me.status());
  Status s = SaveClientConfig(c);
  if (!s.ok()) return Fail(s);
  if (*json_out) {
    std::cout
        << json{{"user", me->name}, {"role", me->role}, {"config_file", ClientConfigPath()}}.dump()
        << "\n";
  } else {
    std::cout << "logged in to " << c.plane_url << " as " << me->name << " (" << me->role
              << "); saved " << ClientConfigPath() << "\n";
  }
  return kExitOk;
}

void PrintDataset(const api::Dataset& d) {
  std::cout << d.name << "\n  owner: " << d.owner << "\n  location: " << d.location
            << "\n  description: " << d.description << "\n  price: " << d.price
            << " per day, up to " << d.max_days << " days\n  key id: " << d.key_id << "\n";
}

// --price as the plane takes it (a decimal such as 10 or 2.50), checked
// before the key file is read or anything is sent.
Status CheckPrice(const std::string& price) {
  const std::string shown = "--price: '" + price.substr(0, 32) + "': ";
  const std::string expected = "a price per day such as 10 or 2.50";
  if (price.starts_with("-"))
    return InvalidArgument(shown + "must not be negative (" + expected + ")");
  const size_t dot = price.find('.');
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  const bool ok = dot == std::string::npos
                      ? digits(price)
                      : digits(std::string_view(price).substr(0, dot)) &&
                            digits(std::string_view(price).substr(dot + 1));
  if (!ok) {
    return InvalidArgument(shown + "expected " + expected +
                           " (digits, an optional '.', no currency sign)");
  }
  return Status::Ok();
}

int DatasetRegister(const Args& args) {
  FlagParser p(
      "cce dataset register NAME --key KEYFILE --location URI [options]",
      "Registers an encrypted dataset with the plane (provider) and hands its key to\n"
      "the plane's key broker, which keeps it sealed under the plane's master key.\n"
      "URI: file:///path (checked: the key must open the dataset), s3://..., juicefs://...",
      {{"key", "KEYFILE", "the dataset key file"},
       {"location", "URI", "where the encrypted dataset is stored"},
       {"description", "TEXT", "shown in the catalog"},
       {"price", "AMOUNT", "price per day (decimal)"},
       {"max-days", "N", "longest rental allowed (default 30)"},
       {"sample", "DIR", "then publish DIR as its sample (cce dataset publish-sample)"},
       kOutputFlag});
  return WithPlane(p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    auto key_path = f.Get("key");
    if (!key_path) return InvalidArgument("--key KEYFILE is required");
    auto location = f.Get("location");
    if (!location) return InvalidArgument("--location URI is required");
    if (auto pr = f.Get("price")) RETURN_IF_ERROR(CheckPrice(*pr));
    RETURN_IF_ERROR(f.GetUint("max-days", 1, 3650).status());
    // Validates the key file locally first, so errors name the file.
    ASSIGN_OR_RETURN(format::DatasetKey key, format::DatasetKey::LoadFile(*key_path));
    crypto::SecretBytes key_text = key.EncodeKeyFile();
    api::RegisterDatasetRequest req;
    req.name = f.positional()[0];
    req.location = *location;
    req.key.assign(reinterpret_cast<const char*>(key_text.data()), key_text.size());
    if (auto d = f.Get("description")) req.description = *d;
    if (auto pr = f.Get("price")) req.price = *pr;
    ASSIGN_OR_RETURN(auto max_days, f.GetUint("max-days", 1, 3650));
    if (max_days) req.max_days = static_cast<int64_t>(*max_days);
    json body = api::ToJson(req);
    auto r = c.Post("/api/v1/datasets", body);
    // The key's copies outside SecretBytes: wiped once sent.
    OPENSSL_cleanse(req.key.data(), req.key.size());
    auto& sent_key = body["key"].get_ref<std::string&>();
    OPENSSL_cleanse(sent_key.data(), sent_key.size());
    if (!r.ok()) return r;
    ASSIGN_OR_RETURN(api::Dataset d, DecodeResponse<api::Dataset>(*r, "POST /api/v1/datasets"));
    if (!f.Has("output")) {
      std::cout << "registered dataset " << d.name << " (key id " << d.key_id << ")\n";
    }
    if (auto sample = f.Get("sample")) {
      auto published = PublishSampleDir(c, d.name, *sample);
      if (!published.ok()) {
        return Status(published.status().code(),
                      "dataset " + d.name + " is registered, but its sample was not published: " +
                          published.status().message() + " (retry: cce dataset publish-sample " +
                          d.name + " " + *sample + ")");
      }
      if (!f.Has("output")) {
        std::cout << "published its sample: version " << published->version << ", "
                  << published->file_count << " files, " << published->total_bytes << " bytes\n";
      }
      json out = *r;
      out["sample"] = api::ToJson(*published);
      return out;
    }
    return r;
  });
}

int DatasetList(const Args& args) {
  FlagParser p("cce dataset list [--output json]", "Lists the plane's dataset catalog.",
               {kOutputFlag});
  return WithPlane(p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    ASSIGN_OR_RETURN(json r, c.Get("/api/v1/datasets"));
    ASSIGN_OR_RETURN(api::DatasetList list,
                     DecodeResponse<api::DatasetList>(r, "GET /api/v1/datasets"));
    if (f.Get("output") != "json") {
      Table t({"NAME", "OWNER", "PRICE/DAY", "MAX-DAYS", "DESCRIPTION"});
      for (const api::Dataset& d : list.datasets) {
        t.AddRow({d.name, d.owner, d.price, std::to_string(d.max_days), d.description});
      }
      std::cout << t.Render();
    }
    return ListItems(r, "datasets");
  });
}

int DatasetShow(const Args& args) {
  FlagParser p("cce dataset show NAME [--output json]", "Shows one dataset of the catalog.",
               {kOutputFlag});
  return WithPlane(p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    const std::string path = "/api/v1/datasets/" + PathSegment(f.positional()[0]);
    ASSIGN_OR_RETURN(json r, c.Get(path));
    ASSIGN_OR_RETURN(api::Dataset d, DecodeResponse<api::Dataset>(r, "GET " + path));
    if (f.Get("output") != "json") PrintDataset(d);
    return r;
  });
}

int Rent(const Args& args) {
  std::vector<FlagSpec> flags = {{"days", "N", "rental length in days"}};
  for (FlagSpec& s : EthereumRentFlags()) flags.push_back(std::move(s));
  flags.push_back(kOutputFlag);
  FlagParser p("cce rent NAME --days N [--key-file F [--rpc URL] [--timeout 10m]] [--output json]",
               "Rents a dataset from now for N days (consumer).\n"
               "Embedded ledger: the rental is a record signed by the plane in its ledger.\n"
               "Ethereum ledger (GET /api/v1/ledger): a rent(datasetId, days) transaction\n"
               "paid from the key in --key-file (its address linked with `cce wallet link`),\n"
               "at the price the contract states; waits for the plane's confirmations and\n"
               "for the plane to index it, then prints the transaction, its block and the\n"
               "rental's end (progress on stderr).",
               std::move(flags));
  return WithPlane(
      p, args, 1, [&](const ParsedFlags& f, PlaneClient& c, bool json_out) -> StatusOr<json> {
        ASSIGN_OR_RETURN(auto days, f.GetUint("days", 1, 3650));
        if (!days) return InvalidArgument("--days N is required");
        ASSIGN_OR_RETURN(api::LedgerInfo ledger, GetLedgerInfo(c));
        if (ledger.backend == "ethereum") {
          return EthereumRent(f, c, ledger, static_cast<uint32_t>(*days), json_out);
        }
        if (HasEthereumRentFlags(f)) {
          return InvalidArgument(
              "this plane's ledger is '" + ledger.backend +
              "': --key-file, --rpc, --rpc-ca, --timeout and --index-timeout are "
              "for planes whose ledger is ethereum");
        }
        api::RentRequest req{.dataset = f.positional()[0], .days = static_cast<int64_t>(*days)};
        ASSIGN_OR_RETURN(json r, c.Post("/api/v1/rentals", api::ToJson(req)));
        ASSIGN_OR_RETURN(api::Rental rental,
                         DecodeResponse<api::Rental>(r, "POST /api/v1/rentals"));
        if (f.Get("output") != "json") {
          std::cout << "rented " << rental.dataset << " until " << FormatTime(rental.end) << "\n";
        }
        return r;
      });
}

int Rentals(const Args& args) {
  FlagParser p("cce rentals [--output json]",
               "Lists rentals: your own (consumer), of your datasets (provider), or all\n"
               "(operator). On an Ethereum plane, with each rental's transaction, block and\n"
               "the address that paid (a header row first).",
               {kOutputFlag});
  return WithPlane(p, args, 0, [&](const ParsedFlags& f, PlaneClient& c, bool) -> StatusOr<json> {
    ASSIGN_OR_RETURN(json r, c.Get("/api/v1/rentals"));
    ASSIGN_OR_RETURN(api::RentalList list,
                     DecodeResponse<api::RentalList>(r, "GET /api/v1/rentals"));
    if (f.Get("output") != "json") {
      ASSIGN_OR_RETURN(api::LedgerInfo ledger, GetLedgerInfo(c));
      if (ledger.backend == "ethereum") {
        PrintEthereumRentals(list);
        return ListItems(r, "rentals");
      }
      Table t({"DATASET", "CONSUMER", "START", "END"});
      for (const api::Rental& x : list.rentals) {
        t.AddRow({x.dataset, x.consumer, FormatTime(x.start), FormatTime(x.end)});
      }
      std::cout << t.Render();
    }
    return ListItems(r, "rentals");
  });
}

}  // namespace

std::vector<Command> PlaneCommands() {
  std::vector<Command> all = {
      {{"login"}, "save the plane's address, your token and its CA", Login},
      {{"dataset", "register"}, "register an encrypted dataset and its key", DatasetRegister},
      {{"dataset", "list"}, "list the dataset catalog", DatasetList},
      {{"dataset", "show"}, "show one dataset", DatasetShow},
      {{"rent"}, "rent a dataset for N days", Rent},
      {{"rentals"}, "list rentals", Rentals},
  };
  for (Command& c : WalletCommands()) all.push_back(std::move(c));
  for (Command& c : ImageCommands()) all.push_back(std::move(c));
  for (Command& c : JobCommands()) all.push_back(std::move(c));
  for (Command& c : AuditCommands()) all.push_back(std::move(c));
  for (Command& c : ReviewCommands()) all.push_back(std::move(c));
  for (Command& c : AttestCommands()) all.push_back(std::move(c));
  for (Command& c : SampleCommands()) all.push_back(std::move(c));
  return all;
}

}  // namespace cce::cli

// libcurl plumbing shared by the project's libcurl users (http::Client and
// pcs::PcsClient): one-time global initialisation and RAII owners for the
// handles. Not part of the transport's interface (client.h, server.h).
#pragma once

#include <curl/curl.h>

#include <memory>

#include "base/status.h"

namespace cce::http::curl {

// curl_global_init once per process (thread-safe); its failure, every time.
Status EnsureInitialized();

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

// Header lists carry bearer tokens and API keys: wiped before they are freed.
struct SlistDeleter {
  void operator()(curl_slist* list) const;
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

}  // namespace cce::http::curl

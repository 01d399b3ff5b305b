#include "http/curl.h"

#include <openssl/crypto.h>

#include <cstring>
#include <mutex>
#include <string>

namespace cce::http::curl {

Status EnsureInitialized() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) return Internal(std::string("curl_global_init: ") + curl_easy_strerror(rc));
  return Status::Ok();
}

void SlistDeleter::operator()(curl_slist* list) const {
  for (curl_slist* n = list; n != nullptr; n = n->next) {
    if (n->data != nullptr) OPENSSL_cleanse(n->data, std::strlen(n->data));
  }
  curl_slist_free_all(list);
}

}  // namespace cce::http::curl

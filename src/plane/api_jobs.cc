// Privacy Mode jobs: /api/v1/jobs (submission, status, history, cancel).
#include "plane/api.h"

namespace cce::plane {

void Api::RegisterJobs(httplib::Server& /*svr*/) {}

}  // namespace cce::plane

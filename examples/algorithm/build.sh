#!/bin/sh
# Builds the example algorithm image (analyze.sh on Debian's busybox-static)
# as an OCI image layout in OUT_DIR, offline: no registry, no container
# engine. The layout's index names it demo/claims-stats:1, the image
# examples/job.yaml runs, so `cce image push OUT_DIR` pushes it under that
# name.
#
# usage: examples/algorithm/build.sh OUT_DIR
#
# busybox comes from the installed busybox-static package (`make` installs
# it) or, without it, from `apt-get download busybox-static` (cached in
# build/example-image-cache). Same inputs, same image digest.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: examples/algorithm/build.sh OUT_DIR}
set -- --out "$out" --ref demo/claims-stats:1 \
  --add "$here/analyze.sh:/app/analyze.sh" --cmd /app/analyze.sh
if dpkg-query -W -f='${Status}\n' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  set -- "$@" --busybox /bin/busybox
else
  set -- "$@" --cache "$here/../../build/example-image-cache"
fi
exec /usr/bin/python3 "$here/build-image.py" "$@"

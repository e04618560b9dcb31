#!/usr/bin/env bash
# Installs the peers `npm run bench` measures buildlog against, from Debian: nginx (static files),
# the Nchan module (live fan-out over http-raw-stream) and the wrk load generator.
set -euo pipefail
need=()
command -v nginx >/dev/null || need+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || need+=(libnginx-mod-nchan)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi
# Debian starts a system nginx on port 80 after installing it; the bench runs its own instances.
echo "bench peers ready: $(nginx -v 2>&1), wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'), nchan $(ls /usr/lib/nginx/modules/ngx_nchan_module.so)"

#!/bin/sh
# The system packages the tests need, from Debian: Chromium for the viewer's browser tests (Playwright never
# downloads a browser here) and the Prometheus project's Python parser for the metrics tests
# (python3-prometheus-client), and strace, which counts the server's fsyncs in test/reliability-commits.test.ts. `npm test` runs this first (`pretest`), so the README's `npm ci && npm test`
# is all a fresh machine needs; .ci/run runs that same command.
set -eu
chromium="${BUILDLOG_CHROMIUM:-/usr/bin/chromium}"

missing=""
[ -x "$chromium" ] || missing="$missing chromium"
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || missing="$missing python3-prometheus-client"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's$missing for the tests (apt-get)..." >&2
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  [ -x "$chromium" ] && /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null && command -v strace >/dev/null 2>&1 && exit 0
fi

echo "The tests need Debian's$missing." >&2
echo "Install with: sudo apt-get update && sudo apt-get install -y$missing" >&2
echo "(or point BUILDLOG_CHROMIUM at another Chromium binary)." >&2
exit 1

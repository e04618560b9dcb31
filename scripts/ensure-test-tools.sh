#!/bin/sh
# The viewer's browser tests drive Debian's Chromium (Playwright never downloads a browser here). `npm test`
# runs this first (`pretest`), so the README's `npm ci && npm test` is all a fresh machine needs; .ci/run
# runs that same command.
set -eu
chromium="${BUILDLOG_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the viewer tests (apt-get)..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  [ -x "$chromium" ] && exit 0
fi

echo "The viewer tests need Chromium at $chromium." >&2
echo "Install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
echo "(or point BUILDLOG_CHROMIUM at another Chromium binary)." >&2
exit 1

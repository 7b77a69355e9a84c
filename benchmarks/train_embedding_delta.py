"""A probe, not shipped: can a small tuning of the packaged embedding model tell restatements from siblings?

all-MiniLM-L6-v2 puts a story and its template sibling ("mark a session as accepted" / "... as
rejected") about as close as a story and its restatement in other words (docs/benchmarks/
similarity_tuning.md). This script fine-tunes it on pairs that differ in exactly that way, as a rank-8
update of every linear layer (LoRA, about 0.7 MB when saved), and prints how well the whole-story cosine
then separates the labelled duplicates. What it gave, and why the update is not shipped:
docs/benchmarks/embedding_tuning.md.

Training pairs, all from the tune backlogs of benchmarks/labels/qus/split.json (held-out backlogs and
the labelled pairs of benchmarks/labels/pairs/ are never read for training):

- benchmarks/labels/training_pairs/written.csv: 480 tune stories (none of them in a labelled pair),
  each with a paraphrase (same need: 1) and a distractor (another need in many of the same words: 0)
  written by six writers from the guideline of docs/labelling.md ("Writing paraphrases");
- with ``--with-backlog-pairs``, also the tune backlogs' own duplicates (every pair the story annotators
  named in ``unique_with``: 1) and siblings (each tune story's three nearest stories of its backlog that
  the annotators did not name: 0).

Loss: binary cross-entropy of 20 * (cosine - 0.75), so a restatement is pushed above the whole-story
gate the rules use (0.75) and a sibling below it. Printed: the AUC of the whole-story cosine on the tune
labelled pairs (duplicate against the rest), before and after; these pairs are not trained on. The
update is written to benchmarks/out/ (not part of the product).

    python benchmarks/train_embedding_delta.py [--epochs 4] [--rank 8] [--with-backlog-pairs] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from qus_labels import LABELS, REAL, split  # noqa: E402


TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")  # the linear layers of every BERT layer that get an update
DEFAULT_OUT = ROOT / "benchmarks" / "out" / "minilm_delta.safetensors"
WRITTEN = ROOT / "benchmarks" / "labels" / "training_pairs" / "written.csv"
PAIRS = ROOT / "benchmarks" / "labels" / "pairs" / "pairs.csv"
SIBLINGS = 3  # nearest same-backlog stories per story taken as negatives
MARGIN, SCALE = 0.75, 20.0
SEED = 7


def _linear_layers(model) -> dict[str, object]:
    import torch

    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and "encoder.layer." in name and name.endswith(TARGETS)}


def add_lora(model, rank: int) -> dict[str, object]:
    """Training only: freezes ``model`` and wraps each target layer in a trainable low-rank update."""
    import torch

    class LowRank(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear):
            super().__init__()
            self.base, self.scale = base, 2.0
            self.A = torch.nn.Parameter(torch.randn(rank, base.in_features) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale

    for p in model.parameters():
        p.requires_grad = False
    wrapped = {}
    for name, layer in _linear_layers(model).items():
        parent_name, child = name.rsplit(".", 1)
        wrapped[name] = LowRank(layer)
        setattr(model.get_submodule(parent_name), child, wrapped[name])
    return wrapped


def save(layers: dict[str, object], path: Path, rank: int) -> None:
    """Writes each layer's A and B (float16) and the scale to ``path`` (safetensors)."""
    from safetensors.torch import save_file

    tensors = {}
    for name, layer in layers.items():
        tensors[f"{name}.A"] = layer.A.detach().to("cpu").half().contiguous()
        tensors[f"{name}.B"] = layer.B.detach().to("cpu").half().contiguous()
    scale = next(iter(layers.values())).scale
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"rank": str(rank), "scale": json.dumps(scale),
                                           "targets": json.dumps(TARGETS)})
    tmp.replace(path)


def apply(model, path: Path) -> None:
    """Adds the saved update (scale * B @ A) to each target layer's weight of ``model``."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        scale = float(json.loads((f.metadata() or {}).get("scale", "2.0")))
        tensors = {k: f.get_tensor(k).float() for k in f.keys()}
    with torch.no_grad():
        for name, layer in _linear_layers(model).items():
            layer.weight += tensors[f"{name}.B"] @ tensors[f"{name}.A"] * scale


def lines_of(backlog: str) -> list[str]:
    return (REAL / f"{backlog}.txt").read_text("utf-8").splitlines()


def training_pairs(model, tune: list[str], labelled: set[frozenset], backlog_pairs: bool) -> list[tuple[str, str, float]]:
    """(text, text, 1 for the same need / 0) from the written pairs and the tune backlogs."""
    texts = {b: lines_of(b) for b in tune}
    out: list[tuple[str, str, float]] = []
    with WRITTEN.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            backlog, line = row["source"].split(":")
            if backlog not in texts:
                raise SystemExit(f"{WRITTEN}: {row['source']} is not a tune backlog's story")
            original = texts[backlog][int(line) - 1].strip()
            out += [(original, row["paraphrase"], 1.0), (original, row["distractor"], 0.0)]
    for backlog in tune if backlog_pairs else ():
        same: dict[int, set[int]] = {}
        with (LABELS / "adjudicated" / f"{backlog}.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                partners = {int(x) for x in row["unique_with"].replace(";", " ").replace(",", " ").split() if x.isdigit()}
                if partners:
                    same.setdefault(int(row["line"]), set()).update(partners)
        lines = [(i, t.strip()) for i, t in enumerate(texts[backlog], 1) if t.strip()]
        vecs = model.encode([t for _, t in lines], convert_to_numpy=True, normalize_embeddings=True)
        sims = vecs @ vecs.T
        seen: set[frozenset] = set()
        for a, (la, ta) in enumerate(lines):
            order = [b for b in np.argsort(-sims[a]) if b != a]
            partners = same.get(la, set())
            picked = [b for b in order if lines[b][0] in partners] + \
                [b for b in order if lines[b][0] not in partners][:SIBLINGS]
            for b in picked:
                lb, tb = lines[b]
                key = frozenset((f"{backlog}:{la}", f"{backlog}:{lb}"))
                if key in seen or key in labelled or ta.lower() == tb.lower():
                    continue
                seen.add(key)
                out.append((ta, tb, 1.0 if lb in partners or la in same.get(lb, set()) else 0.0))
    return out


def labelled_tune_pairs() -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, set[frozenset]]:
    """The tune pairs of benchmarks/labels/pairs (texts, is duplicate, is paraphrase or distractor) and
    every labelled pair's references (never trained on)."""
    rows = list(csv.DictReader(PAIRS.open(encoding="utf-8", newline="")))
    refs = {frozenset((r["a"], r["b"])) for r in rows if r["b"]}
    tune = [r for r in rows if r["part"] == "tune"]

    def text(ref: str) -> str:
        backlog, line = ref.split(":")
        return lines_of(backlog)[int(line) - 1].strip()

    texts = [(text(r["a"]), r["b_text"] or text(r["b"])) for r in tune]
    return (texts, np.array([r["label"] == "duplicate" for r in tune]),
            np.array([r["kind"] in ("paraphrase", "distractor") for r in tune]), refs)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    return float((np.sum(pos[:, None] > neg[None, :]) + 0.5 * np.sum(pos[:, None] == neg[None, :])) / (len(pos) * len(neg)))


def cosines(model, pairs: list[tuple[str, str]]) -> np.ndarray:
    a = model.encode([x for x, _ in pairs], convert_to_numpy=True, normalize_embeddings=True)
    b = model.encode([y for _, y in pairs], convert_to_numpy=True, normalize_embeddings=True)
    return (a * b).sum(1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--with-backlog-pairs", action="store_true",
                    help="also train on the tune backlogs' own duplicates and nearest siblings (not shipped: see below)")
    args = ap.parse_args()
    if not REAL.is_dir():
        print(f"the real backlogs are not at {REAL}: nothing to train on", file=sys.stderr)
        return 2
    import torch
    from sentence_transformers import SentenceTransformer

    from storytransformer.similarity.embedding_model import MAX_SEQ_LENGTH, packaged_model_dir

    torch.manual_seed(SEED)
    random.seed(SEED)
    torch.set_num_threads(2)
    model = SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_SEQ_LENGTH
    eval_pairs, is_dup, written, labelled = labelled_tune_pairs()
    before = cosines(model, eval_pairs)
    data = training_pairs(model, split()["tune"], labelled, args.with_backlog_pairs)
    print(f"training pairs: {len(data)} ({sum(y for *_, y in data):.0f} the same need)", file=sys.stderr)
    layers = add_lora(model, args.rank)
    params = [p for layer in layers.values() for p in (layer.A, layer.B)]
    opt = torch.optim.AdamW(params, lr=args.lr)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        random.shuffle(data)
        total = 0.0
        for i in range(0, len(data), 16):
            batch = data[i:i + 16]
            a = model(model.preprocess([x for x, _, _ in batch]))["sentence_embedding"]
            b = model(model.preprocess([y for _, y, _ in batch]))["sentence_embedding"]
            cos = torch.nn.functional.cosine_similarity(a, b)
            target = torch.tensor([y for *_, y in batch], dtype=torch.float32)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(SCALE * (cos - MARGIN), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(batch)
        print(f"epoch {epoch + 1}: loss {total / len(data):.4f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    model.eval()
    save(layers, args.out, rank=args.rank)
    # the product's path: the packaged model with the saved delta added to its weights
    check = SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
    check.max_seq_length = MAX_SEQ_LENGTH
    apply(check, args.out)
    after = cosines(check, eval_pairs)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    print("tune labelled pairs (not trained on), AUC of the whole-story cosine, duplicate against the rest:")
    print(f"  all {is_dup.size} pairs:              before {auc(before, is_dup):.3f}  after {auc(after, is_dup):.3f}")
    print(f"  paraphrases and distractors ({written.sum()}): before {auc(before[written], is_dup[written]):.3f}  "
          f"after {auc(after[written], is_dup[written]):.3f}")
    near = before >= 0.6
    print(f"  whole cosine >= 0.6 before ({near.sum()}): before {auc(before[near], is_dup[near]):.3f}  "
          f"after {auc(after[near], is_dup[near]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the language model judges duplicate pairs (ST606, docs/similarity.md) on a GPU.

``check --model-checks`` asks the configured model one scored yes/no question per near pair of the
embedding index. This times that question through the real engine (``create_engine``, the same
``judge.Ask`` messages, ``score`` of the yes/no spellings) on a model of the judge model's shape
(Qwen2.5-Coder-1.5B: 28 layers, 1536 wide) built with random weights from its config.json, with its real
tokenizer: the time of a forward pass does not depend on the weights' values, and the 1.1 GB model file
cannot always be taken where the GPU is. The answers are meaningless; only the time counts. Pairs of
stories come from the project's own sample backlog (examples/). Prints a table and writes
pair_judge_speed.json under --out.

    python3 benchmarks/gpu/pair_judge_speed.py --shape DIR --out OUT [--questions 300] [--device cuda]
    python3 benchmarks/gpu/pair_judge_speed.py --shape DIR --out OUT --tiny --device cpu   # smoke test

DIR holds the judge model's config.json and tokenizer files (the engine's conversion cache of the GGUF
has them: ~/.cache/storytransformer/models/<sha256>/, without model.safetensors).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NEAR_PAIRS_22 = 1517  # near pairs of the 22 real backlogs, each checked alone (docs/similarity.md)
SHAPE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def random_model(shape: Path, target: Path, tiny: bool) -> dict:
    """A model directory of ``shape``'s architecture with random bf16 weights and its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in SHAPE_FILES:
        if (shape / name).is_file():
            shutil.copy(shape / name, target / name)
    config = AutoConfig.from_pretrained(str(target))
    if tiny:
        config.num_hidden_layers, config.hidden_size, config.intermediate_size = 2, 64, 128
        config.num_attention_heads, config.num_key_value_heads = 4, 2
        if hasattr(config, "layer_types") and config.layer_types:
            config.layer_types = config.layer_types[:2]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(target), safe_serialization=True)
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "parameters": sum(p.numel() for p in model.parameters())}


def sample_pairs():
    """Every pair of the sample backlog's stories, in file order."""
    from storytransformer.workspace import Workspace

    ws = Workspace()
    for f in sorted((ROOT / "examples").iterdir()):
        ws.load(str(f))
    stories = [s for s in ws.stories() if s.text.strip()]
    return list(itertools.combinations(stories, 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=Path, required=True, help="the judge model's config.json and tokenizer files")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model of the same vocabulary (smoke test)")
    args = ap.parse_args(argv)
    from storytransformer.config import Config, EngineConfig
    from storytransformer.engine import create_engine, judge

    args.out.mkdir(parents=True, exist_ok=True)
    pairs = sample_pairs()
    with tempfile.TemporaryDirectory() as d:
        model_dir = Path(d)
        t = time.perf_counter()
        shape = random_model(args.shape, model_dir, args.tiny)
        built_s = time.perf_counter() - t
        engine = create_engine(Config(engine=EngineConfig(model=str(model_dir), device=args.device, generate=False)))
        t = time.perf_counter()
        status = engine.load()
        load_s = time.perf_counter() - t
        asks = [judge.Ask("ST606", b, (a,)) for a, b in itertools.islice(itertools.cycle(pairs), args.questions + 5)]
        times, tokens = [], []
        for i, ask in enumerate(asks):
            context = engine.render(ask.messages())
            t = time.perf_counter()
            judge.p_yes(engine.score(list(judge.YES + judge.NO), context=context))
            if i >= 5:  # the first questions warm the kernels up
                times.append(time.perf_counter() - t)
                tokens.append(engine.count_tokens(context) if hasattr(engine, "count_tokens") else 0)
    per = statistics.mean(times)
    result = {"date": time.strftime("%Y-%m-%d"), "device": status.device, "backend": status.backend,
              "attention": getattr(status, "attention", ""), "dtype": getattr(status, "dtype", ""),
              "shape": shape, "tiny": args.tiny, "questions": len(times), "built_s": round(built_s, 1),
              "load_s": round(load_s, 1), "s_per_question_mean": per, "s_per_question_median": statistics.median(times),
              "prompt_tokens_mean": statistics.mean(tokens) if tokens else None,
              "near_pairs_22_backlogs_s": per * NEAR_PAIRS_22}
    try:
        import torch

        if torch.cuda.is_available():
            result["gpu"] = torch.cuda.get_device_name(0)
            result["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    except ImportError:
        pass
    print(f"| device | questions | s/question (mean / median) | prompt tokens | 1,517 near pairs (22 backlogs) |\n"
          f"|---|---:|---:|---:|---:|\n"
          f"| {result.get('gpu', status.device)} ({result['dtype']}, {result['attention']}) | {len(times)} | "
          f"{per:.4f} / {result['s_per_question_median']:.4f} | {result['prompt_tokens_mean'] or 0:.0f} | "
          f"{result['near_pairs_22_backlogs_s']:.1f} s |")
    (args.out / "pair_judge_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

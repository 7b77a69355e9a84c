"""The engine's formats on the packaged SmolLM2-135M's real weights through the real LocalEngine on a
CUDA GPU: bf16 or int4 weights (``engine.quantization``), bf16 or fp8 cache (``engine.kv_cache``), each of
the four combinations: load, status (weights bytes), per-token scores of a story and its shuffled words,
warm decode ms/token after a 3k-token prompt (128 tokens from a CUDA graph, minus one), and a short answer.

    python benchmarks/gpu/engine_formats_real.py MODEL.gguf   (OUT=DIR for the JSON, default /tmp)

MODEL.gguf: the packaged model's file (a copy of it where the package is not installed). The int4 packing
pads the model's 576-wide inputs to 640 (fastgen.int4)."""
import json, os, sys, time, tempfile
from pathlib import Path
import torch
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "server"))
from storytransformer.config import Config, EngineConfig
from storytransformer.engine.local import LocalEngine
gguf = sys.argv[1]
cache = Path(tempfile.mkdtemp())
texts = ["As a visitor, I want to search the catalogue, so that I can find a book.",
         "catalogue the visitor search find, want as I so a book can I that to."]
prompt = [{"role": "user", "content": "As a librarian, I want to renew books, so that members keep reading. " * 200}]
rows = []
for q, kv in [("none", "bf16"), ("int4", "bf16"), ("none", "fp8"), ("int4", "fp8")]:
    row = {"quantization": q, "kv_cache": kv}
    try:
        eng = LocalEngine(Config(engine=EngineConfig(model=gguf, device="cuda", quantization=q, kv_cache=kv,
                                                     fast_path="on", context_tokens=4096)), cache_root=cache)
        t = time.perf_counter(); st = eng.load(); row["load_s"] = round(time.perf_counter() - t, 2)
        row.update(weights=st.weights, kv=st.kv_cache, kv_bytes=st.kv_cache_bytes, memory_bytes=st.memory_bytes,
                   memory_saved_bytes=st.memory_saved_bytes, notes=list(st.notes)[-2:])
        be = eng.backend
        s = be.score(texts); row["scores_per_token"] = [round(x.per_token, 3) for x in s]
        inner = be.inner
        ids = inner.tokenizer(inner.render(prompt), add_special_tokens=False)["input_ids"]
        row["prompt_tokens"] = len(ids)
        times = {}
        for n in (1, 129, 1, 129):
            torch.cuda.synchronize(); t = time.perf_counter()
            out = be.session.generate(ids, n, stop=lambda new: False, allowed=None)
            torch.cuda.synchronize(); times[n] = time.perf_counter() - t
        row["ms_per_token"] = round((times[129] - times[1]) / 128 * 1e3, 3)
        row["warm_first_token_ms"] = round(times[1] * 1e3, 2)
        row["text"] = inner.tokenizer.decode(be.session.generate(inner.tokenizer(inner.render([{"role": "user", "content": "Rewrite as one user story: search should be fast"}]), add_special_tokens=False)["input_ids"], 40, stop=lambda new: new[-1] in inner.eos_ids(), allowed=None))
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
        eng.unload()
    except Exception as e:
        import traceback; traceback.print_exc(); row["error"] = f"{type(e).__name__}: {e}"
    torch.cuda.reset_peak_memory_stats()
    print(json.dumps(row, default=str), flush=True)
    rows.append(row)
Path(os.environ.get("OUT", "/tmp")).joinpath("engine_int4_real.json").write_text(json.dumps(rows, indent=1, default=str))

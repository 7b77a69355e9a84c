"""The engine's own formats on a GPU: ``engine.quantization = "int4"`` and ``engine.kv_cache = "fp8"``
through the real LocalEngine (load, status, score, generate), each of the four combinations.

A randomly initialised Llama of hidden size 1024 (head size 128) is built with the packaged tokenizer
(the packaged model's real weights: engine_formats_real.py). Usage, on a CUDA machine:
    python benchmarks/gpu/engine_formats.py TOKENIZER_DIR [OUT.json]
TOKENIZER_DIR: a directory with tokenizer.json, tokenizer_config.json and chat_template.jinja (the
converted packaged model's directory under the cache root has them). Times include Triton compilation
and CUDA-graph capture: this is a wiring check, not a speed benchmark (bench.py is that).
"""
import json, sys, time, tempfile, shutil
from pathlib import Path
import torch
from transformers import LlamaConfig, LlamaForCausalLM, AutoTokenizer

tok_dir = Path(sys.argv[1])
tok = AutoTokenizer.from_pretrained(tok_dir)
mdir = Path(tempfile.mkdtemp()) / "random-llama-1024"
cfg = LlamaConfig(hidden_size=1024, intermediate_size=2816, num_attention_heads=8, num_key_value_heads=4,
                  head_dim=128, num_hidden_layers=8, vocab_size=len(tok), max_position_embeddings=8192,
                  tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(mdir)
tok.save_pretrained(mdir)
for f in ("chat_template.jinja", "generation_config.json"):
    shutil.copy(tok_dir / f, mdir / f)
del model

from storytransformer.config import Config, EngineConfig
from storytransformer.engine.local import LocalEngine
rows = []
prompt = [{"role": "user", "content": "As a librarian, I want to renew books, so that members keep reading. " * 40}]
for q, kv in [("none", "bf16"), ("int4", "bf16"), ("none", "fp8"), ("int4", "fp8")]:
    row = {"quantization": q, "kv_cache": kv}
    try:
        eng = LocalEngine(Config(engine=EngineConfig(model=str(mdir), device="cuda", quantization=q, kv_cache=kv,
                                                     fast_path="on", context_tokens=4000)),
                          cache_root=Path(tempfile.mkdtemp()))
        t = time.perf_counter(); st = eng.load(); row["load_s"] = round(time.perf_counter() - t, 2)
        row.update(weights=st.weights, kv=st.kv_cache, kv_bytes=st.kv_cache_bytes, notes=getattr(eng.backend, "notes", [])[:3])
        be = eng.backend
        t = time.perf_counter(); s = be.score(["As a member, I want to renew a book.", "Completely unrelated text."], context="backlog")
        torch.cuda.synchronize(); row["score_s"] = round(time.perf_counter() - t, 3); row["scores"] = [round(x.per_token, 3) for x in s]
        for n in range(2):
            t = time.perf_counter(); out = be.generate(prompt, max_new_tokens=32)
            torch.cuda.synchronize(); row[f"generate{n}_s"] = round(time.perf_counter() - t, 3)
        row["generated_chars"] = len(str(out))
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        eng.unload(); row["after_unload"] = eng.status().kv_cache_bytes
    except Exception as e:
        import traceback; row["error"] = f"{type(e).__name__}: {e}"; traceback.print_exc()
    torch.cuda.reset_peak_memory_stats()
    print(json.dumps(row, default=str), flush=True)
    rows.append(row)
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text(json.dumps(rows, indent=1, default=str))

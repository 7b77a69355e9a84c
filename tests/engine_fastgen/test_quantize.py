"""bitsandbytes int8 and NF4 weights in the fast path, on the CPU with the tiny model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from storytransformer.engine.fastgen.kv_cache import StaticKVCache  # noqa: E402
from storytransformer.engine.fastgen.config import ModelConfig  # noqa: E402
from storytransformer.engine.fastgen.generate import Generator  # noqa: E402
from storytransformer.engine.fastgen.model import build_model  # noqa: E402
from storytransformer.engine.fastgen.quantize import quantize_linears  # noqa: E402

CFG = ModelConfig.tiny()


def matrix_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for layer in model.layers for p in layer.parameters())


@pytest.mark.parametrize("fmt, module, size, max_ratio", [("int8", "Linear8bitLt", 0.55, 0.3),
                                                         ("nf4", "Linear4bit", 0.3, 0.3)])
def test_every_layer_matrix_is_replaced_and_output_stays_close(fmt, module, size, max_ratio):
    base = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    quant = build_model(CFG, "cpu", torch.bfloat16, seed=1)
    before = matrix_bytes(quant)
    assert quantize_linears(quant, fmt) == 4 * CFG.n_layers  # wqkv, wo, w13, w2 in every layer
    assert {type(m).__name__ for layer in quant.layers for m in layer.modules()} >= {module}
    assert not any(type(m) is torch.nn.Linear for layer in quant.layers for m in layer.modules())
    assert type(quant.output) is torch.nn.Linear  # the head stays bf16
    assert matrix_bytes(quant) < size * before  # 1 byte or half a byte a weight, plus biases and norms
    prompt = torch.randint(CFG.vocab, (1, 40), generator=torch.Generator().manual_seed(3))
    logits = []
    for model in (base, quant):
        logits.append(model.prefill(prompt, 0, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager"))
    err = (logits[0] - logits[1]).norm() / logits[0].norm()
    assert err < max_ratio, err  # quantisation noise, not a different model
    tokens = Generator(quant, StaticKVCache(CFG, 64, device="cpu", dtype=torch.bfloat16), "eager", "matmul",
                       chunk=16).generate(prompt, 4)
    assert tokens.shape == (1, 4) and int(tokens.max()) < CFG.vocab  # decoding runs through the quantized layers


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown weight format 'fp8'"):
        quantize_linears(build_model(CFG, "cpu", torch.bfloat16), "fp8")

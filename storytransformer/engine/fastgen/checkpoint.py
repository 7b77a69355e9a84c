"""Real weights for the fast path: a fastgen decoder over a loaded transformers model of the Llama,
Qwen2 or Mistral family, sharing its memory.

Embeddings, norms, the output and down projections are the same tensors in both; the q/k/v and
gate/up matrices are concatenated into fastgen's fused projections and the transformers modules are
pointed at views of them, so the two models together hold one copy of the weights."""

from __future__ import annotations

import torch

from .config import ModelConfig
from .model import Transformer

SUPPORTED = ("llama", "qwen2", "mistral")


def config_from_hf(hf_config) -> ModelConfig:
    """The fastgen shape of a transformers config; ValueError naming what the fast path cannot run."""
    kind = getattr(hf_config, "model_type", "")
    if kind not in SUPPORTED:
        raise ValueError(f"the fast path runs {', '.join(SUPPORTED)} decoders, not {kind or 'this model'!r}")
    rope = getattr(hf_config, "rope_parameters", None) or getattr(hf_config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in ("default", None):
        raise ValueError(f"the fast path has plain rotary positions only, not {rope_type!r} scaling")
    theta = (rope.get("rope_theta") if isinstance(rope, dict) else None) or getattr(hf_config, "rope_theta", 10000.0)
    if getattr(hf_config, "hidden_act", "silu") != "silu" or getattr(hf_config, "mlp_bias", False):
        raise ValueError("the fast path has a SwiGLU MLP without bias only")
    if getattr(hf_config, "use_sliding_window", False) or (kind == "mistral" and getattr(hf_config, "sliding_window", None)):
        raise ValueError("the fast path has no sliding-window attention")
    heads = hf_config.num_attention_heads
    return ModelConfig(
        n_layers=hf_config.num_hidden_layers, dim=hf_config.hidden_size, intermediate=hf_config.intermediate_size,
        n_heads=heads, n_kv_heads=getattr(hf_config, "num_key_value_heads", None) or heads,
        head_dim=getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads,
        vocab=hf_config.vocab_size, rope_theta=float(theta), norm_eps=hf_config.rms_norm_eps,
        qkv_bias=kind == "qwen2" or bool(getattr(hf_config, "attention_bias", False)),
        name=getattr(hf_config, "name_or_path", "") or kind)


@torch.no_grad()
def from_hf_model(hf_model, fused: bool | None = None) -> Transformer:
    """A fastgen Transformer over ``hf_model``'s weights (same device and dtype, memory shared)."""
    if getattr(hf_model, "is_quantized", False) or getattr(hf_model.config, "quantization_config", None):
        raise ValueError("the fast path needs unquantized weights (engine.quantization = \"none\")")
    cfg = config_from_hf(hf_model.config)
    first = next(hf_model.parameters())
    device, dtype = first.device, first.dtype
    if fused is None:
        fused = device.type == "cuda" and _triton_ok(cfg)
    with torch.device("meta"):
        model = Transformer(cfg, device="meta", dtype=dtype, fused=fused)
    body = hf_model.model
    share(model.tok_embeddings, "weight", body.embed_tokens.weight)
    share(model.norm, "weight", body.norm.weight)
    share(model.output, "weight", hf_model.lm_head.weight)
    for mine, theirs in zip(model.layers, body.layers):
        attn, mlp = theirs.self_attn, theirs.mlp
        share(mine.attention_norm, "weight", theirs.input_layernorm.weight)
        share(mine.ffn_norm, "weight", theirs.post_attention_layernorm.weight)
        share(mine.attention.wo, "weight", attn.o_proj.weight)
        share(mine.feed_forward.w2, "weight", mlp.down_proj.weight)
        fuse(mine.attention.wqkv, (attn.q_proj, attn.k_proj, attn.v_proj), bias=cfg.qkv_bias)
        fuse(mine.feed_forward.w13, (mlp.gate_proj, mlp.up_proj), bias=False)
    return model.eval().requires_grad_(False)


def share(module: torch.nn.Module, name: str, tensor: torch.Tensor) -> None:
    setattr(module, name, torch.nn.Parameter(tensor.detach(), requires_grad=False))


def fuse(target: torch.nn.Linear, parts: tuple[torch.nn.Linear, ...], bias: bool) -> None:
    """Concatenate ``parts`` along the output dimension into ``target``, then make each part a view of
    its rows, so the concatenation replaces rather than duplicates them."""
    weight = torch.cat([p.weight.detach() for p in parts])
    share(target, "weight", weight)
    biases = torch.cat([p.bias.detach() for p in parts]) if bias else None
    if bias:
        share(target, "bias", biases)
    row = 0
    for p in parts:
        rows = p.weight.shape[0]
        p.weight = torch.nn.Parameter(weight[row:row + rows], requires_grad=False)
        if bias:
            p.bias = torch.nn.Parameter(biases[row:row + rows], requires_grad=False)
        row += rows


def _triton_ok(cfg: ModelConfig) -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return cfg.head_dim >= 16 and cfg.head_dim & (cfg.head_dim - 1) == 0

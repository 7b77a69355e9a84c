"""bitsandbytes weights for the fast path: every matrix of the decoder layers in 8-bit (LLM.int8,
vector-wise, no outlier split) or 4-bit NF4 (blocks of 64, bf16 compute); the output head stays in
bf16, as transformers leaves it. Quantised on the GPU in place, one matrix at a time, so the peak is
the bf16 model plus one matrix."""

from __future__ import annotations

from torch import nn

FORMATS = ("int8", "nf4")


def quantize_linears(model: nn.Module, fmt: str) -> int:
    """Replace the nn.Linear modules of ``model.layers`` by bitsandbytes modules; returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; choose from {', '.join(FORMATS)}")
    import bitsandbytes as bnb

    count = 0
    for layer in model.layers:
        for parent in layer.modules():
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, _quantized(bnb, child, fmt))
                    count += 1
    return count


def _quantized(bnb, linear: nn.Linear, fmt: str) -> nn.Module:
    weight, device = linear.weight.data, linear.weight.device
    has_bias = linear.bias is not None
    if fmt == "int8":
        q = bnb.nn.Linear8bitLt(linear.in_features, linear.out_features, bias=has_bias, has_fp16_weights=False,
                                threshold=0.0, device="meta")
        q.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)._quantize(device)
    else:
        q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=has_bias, compute_dtype=weight.dtype,
                              compress_statistics=False, quant_type="nf4", device="meta")
        q.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=False,
                                     module=q)._quantize(device)
    if has_bias:
        q.bias = nn.Parameter(linear.bias.data, requires_grad=False)
    return q.eval()

#!/usr/bin/env python3
"""One CFG step of the upstream NextDiT_CLIP (its models/ at 709e9a4, packed into the bundle by pack --upstream) on the GPU.

Builds the model with random weights (every parameter re-drawn, as the fixtures were: matrices N(0, 1/fan_in),
biases N(0, 0.05^2), norm scales 1 + N(0, 0.1^2); upstream's own init zeroes the AdaLN layers, which would make the
comparison blind), casts it to bfloat16, and writes for the C# side (NewBie.Bench step):
  weights.safetensors  state_dict() under the released checkpoint's key names (no prefix)
  inputs.safetensors   x, t and the cond/uncond conditioning
  upstream.safetensors the guided velocity of forward_with_cfg (first half of [cond, uncond])
  upstream.json        median milliseconds of 5 timed steps after 2 warm-ups (CUDA events)

flash_attn is not installed on the GPU machine, and upstream calls flash_attn_varlen_func for bf16. The shim below
keeps upstream's code path (unpad, per-sequence attention, pad) and runs each sequence through PyTorch's
scaled_dot_product_attention with enable_gqa (flash/cuDNN kernels on Hopper), so the step is upstream's
code with only that one kernel substituted.
"""
import argparse
import json
import math
import os
import statistics
import sys
import types

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def install_flash_attn_shim():
    def index_first_axis(x, indices):
        return x.reshape(-1, *x.shape[1:])[indices]

    def pad_input(hidden, indices, batch, seqlen):
        out = torch.zeros(batch * seqlen, *hidden.shape[1:], dtype=hidden.dtype, device=hidden.device)
        out[indices] = hidden
        return out.reshape(batch, seqlen, *hidden.shape[1:])

    def unpad_input(hidden, mask):
        seqlens = mask.sum(dim=-1, dtype=torch.int32)
        indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
        cu = F.pad(torch.cumsum(seqlens, dim=0, dtype=torch.int32), (1, 0))
        return index_first_axis(hidden, indices), indices, cu, int(seqlens.max().item())

    def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                               dropout_p=0.0, softmax_scale=None, causal=False, **_):
        assert dropout_p == 0.0
        bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
        outs = []
        for i in range(len(bounds_q) - 1):
            qi = q[bounds_q[i]:bounds_q[i + 1]].transpose(0, 1).unsqueeze(0)
            ki = k[bounds_k[i]:bounds_k[i + 1]].transpose(0, 1).unsqueeze(0)
            vi = v[bounds_k[i]:bounds_k[i + 1]].transpose(0, 1).unsqueeze(0)
            o = F.scaled_dot_product_attention(qi, ki, vi, is_causal=causal, scale=softmax_scale, enable_gqa=True)
            outs.append(o.squeeze(0).transpose(0, 1))
        return torch.cat(outs, dim=0)

    flash = types.ModuleType("flash_attn")
    flash.flash_attn_varlen_func = flash_attn_varlen_func
    padding = types.ModuleType("flash_attn.bert_padding")
    padding.index_first_axis, padding.pad_input, padding.unpad_input = index_first_axis, pad_input, unpad_input
    flash.bert_padding = padding
    sys.modules.setdefault("flash_attn", flash)
    sys.modules.setdefault("flash_attn.bert_padding", padding)


def build(config):
    from models.model import NextDiT_CLIP, NextDiT_3B_GQA_patch2_Adaln_Refiner_WHIT_CLIP
    if config == "full":
        # The released transformer: model-spec §3.1 (NB-demo's call of the factory).
        return NextDiT_3B_GQA_patch2_Adaln_Refiner_WHIT_CLIP(in_channels=16, qk_norm=True, cap_feat_dim=2560)
    # NewBie.Pipeline NextDiTConfig.Tiny, so a dry run on a machine with Python torch compares the same shapes.
    return NextDiT_CLIP(patch_size=2, in_channels=16, dim=64, n_layers=2, n_refiner_layers=1, n_heads=4, n_kv_heads=2,
                        multiple_of=32, qk_norm=True, cap_feat_dim=64, axes_dims=[4, 6, 6],
                        axes_lens=[1024, 512, 512], clip_text_dim=64)


@torch.no_grad()
def randomize(model, seed, device):
    g = torch.Generator(device=device).manual_seed(seed)
    for name, p in model.state_dict().items():
        noise = torch.randn(p.shape, generator=g, device=device, dtype=torch.float32)
        if p.dim() >= 2:
            value = noise / math.sqrt(p.shape[1])
        elif name.endswith(".bias"):
            value = noise * 0.05
        else:
            value = noise * 0.1 + 1
        p.copy_(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="folder holding models/ of NewBie-image-Exp0.1")
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", choices=["full", "tiny"], default="full")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--cond-tokens", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    install_flash_attn_shim()
    sys.path.insert(0, a.upstream)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False

    with torch.device(device):
        model = build(a.config)
    randomize(model, a.seed, device)
    model = model.to(torch.bfloat16).eval()
    os.makedirs(a.out, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              os.path.join(a.out, "weights.safetensors"), metadata={"format": "pt"})

    g = torch.Generator(device=device).manual_seed(a.seed + 1)
    cap_dim, clip_dim = model.cap_embedder[1].in_features, model.clip_text_pooled_proj[1].in_features
    latent = a.size // 8
    inputs = {
        "x": torch.randn(1, 16, latent, latent, generator=g, device=device),
        "t": torch.tensor([0.3], device=device),
        "cond.cap_feats": torch.randn(1, a.cond_tokens, cap_dim, generator=g, device=device),
        "cond.cap_mask": torch.ones(1, a.cond_tokens, dtype=torch.int64, device=device),
        "cond.clip_text_pooled": torch.randn(1, clip_dim, generator=g, device=device),
        "uncond.cap_feats": torch.randn(1, 1, cap_dim, generator=g, device=device),
        "uncond.cap_mask": torch.ones(1, 1, dtype=torch.int64, device=device),
        "uncond.clip_text_pooled": torch.randn(1, clip_dim, generator=g, device=device),
    }
    save_file({k: v.cpu().contiguous() for k, v in inputs.items()}, os.path.join(a.out, "inputs.safetensors"))

    # Upstream's batch layout: [cond, uncond] of one image, captions right-padded to the longer one.
    length = a.cond_tokens
    cap = torch.zeros(2, length, cap_dim, device=device)
    mask = torch.zeros(2, length, dtype=torch.int64, device=device)
    cap[0], mask[0] = inputs["cond.cap_feats"][0], 1
    cap[1, :1], mask[1, :1] = inputs["uncond.cap_feats"][0], 1
    pooled = torch.cat([inputs["cond.clip_text_pooled"], inputs["uncond.clip_text_pooled"]]).to(torch.bfloat16)
    x = inputs["x"].repeat(2, 1, 1, 1).to(torch.bfloat16)
    t = inputs["t"].repeat(2)
    cap = cap.to(torch.bfloat16)

    def step():
        # NewBie.Bench's CfgSettings(5.0, 1.0, 1.0): scale 5, CFG while t < 1, renorm clamp at 1.0.
        return model.forward_with_cfg(x, t, cap, mask, 5.0, cfg_trunc=1.0, renorm_cfg=1.0, clip_text_pooled=pooled)

    with torch.no_grad():
        for _ in range(2):
            out = step()
        times = []
        for _ in range(5):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = step()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                import time
                t0 = time.perf_counter()
                out = step()
                times.append((time.perf_counter() - t0) * 1000)
    save_file({"velocity": out[:1].float().cpu().contiguous()}, os.path.join(a.out, "upstream.safetensors"))
    result = {"ms": statistics.median(times), "times_ms": times, "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "attention": "flash_attn_varlen_func shim: per-sequence F.scaled_dot_product_attention(enable_gqa=True)"}
    with open(os.path.join(a.out, "upstream.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

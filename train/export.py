"""``polyko export CHECKPOINT --output DIR``: a DeepSpeed checkpoint -> Hugging Face GPT-NeoX folder.

The result loads with ``transformers.GPTNeoXForCausalLM.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``: ``config.json``, ``model.safetensors``, the tokenizer files.

The state-dict adapter is explicit (torchtitan style): one function per direction, one line per
tensor. The only non-trivial tensor is the fused QKV projection: ours is laid out
``[3, heads, head_dim]`` along the output dimension, Hugging Face's GPT-NeoX
``[heads, 3, head_dim]`` (it views the projection as ``(..., heads, 3 * head_dim)``).

CHECKPOINT is a run's ``checkpoints/`` directory (the ``latest`` tag is used), or one tag
directory inside it. ZeRO stage 0-2 checkpoints keep the full module weights in
``mp_rank_00_model_states.pt``, which is what we read.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch

from train.model import ModelConfig


# ---------------------------------------------------------------------------------------------
# state-dict adapter
def _qkv_to_hf(t: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """[3*heads*hd, ...] laid out (3, heads, hd) -> (heads, 3, hd)."""
    rest = t.shape[1:]
    return t.reshape(3, cfg.n_head, cfg.head_dim, *rest).transpose(0, 1).reshape(3 * cfg.d_model, *rest)


def _qkv_from_hf(t: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    rest = t.shape[1:]
    return t.reshape(cfg.n_head, 3, cfg.head_dim, *rest).transpose(0, 1).reshape(3 * cfg.d_model, *rest)


_LAYER_SAME = [
    "input_layernorm.weight", "input_layernorm.bias",
    "post_attention_layernorm.weight", "post_attention_layernorm.bias",
    "attention.dense.weight", "attention.dense.bias",
    "mlp.dense_h_to_4h.weight", "mlp.dense_h_to_4h.bias",
    "mlp.dense_4h_to_h.weight", "mlp.dense_4h_to_h.bias",
]


def _name_pairs(cfg: ModelConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(ours, hf)`` names: tensors copied as they are, and the fused QKV tensors whose rows are
    reordered (``_qkv_to_hf`` / ``_qkv_from_hf``).  One table serves both directions."""
    same = [("embed_in.weight", "gpt_neox.embed_in.weight"),
            ("final_layer_norm.weight", "gpt_neox.final_layer_norm.weight"),
            ("final_layer_norm.bias", "gpt_neox.final_layer_norm.bias"),
            ("embed_out.weight", "embed_out.weight")]
    qkv = []
    for i in range(cfg.n_layer):
        ours, hf = f"layers.{i}.", f"gpt_neox.layers.{i}."
        same += [(ours + name, hf + name) for name in _LAYER_SAME]
        qkv += [(ours + f"attention.query_key_value.{kind}", hf + f"attention.query_key_value.{kind}")
                for kind in ("weight", "bias")]
    return same, qkv


def to_hf_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    same, qkv = _name_pairs(cfg)
    out = {hf: sd[ours] for ours, hf in same}
    out |= {hf: _qkv_to_hf(sd[ours], cfg) for ours, hf in qkv}
    expected = len(sd)
    if len(out) != expected:
        raise ValueError(f"adapter mapped {len(out)} of {expected} tensors: checkpoint/model mismatch")
    # safetensors wants contiguous, unshared storage
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def from_hf_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    same, qkv = _name_pairs(cfg)
    out = {ours: sd[hf] for ours, hf in same}
    out |= {ours: _qkv_from_hf(sd[hf], cfg) for ours, hf in qkv}
    return out


def hf_config(cfg: ModelConfig, tokenizer: dict | None, dtype: torch.dtype) -> dict:
    """config.json for transformers' GPTNeoXConfig (old keys rotary_pct/rotary_emb_base for
    transformers < 5, ``rope_parameters`` for 5.x)."""
    tokenizer = tokenizer or {}
    eod = tokenizer.get("eod_id", 0)
    rotary_pct = cfg.rotary_dim / cfg.head_dim
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "intermediate_size": cfg.mlp_ratio * cfg.d_model,
        "hidden_act": "gelu",
        "rotary_pct": rotary_pct,
        "rotary_emb_base": int(cfg.rotary_base),
        "rope_parameters": {"rope_type": "default", "rope_theta": float(cfg.rotary_base),
                            "partial_rotary_factor": rotary_pct},
        "max_position_embeddings": cfg.context_length,
        "initializer_range": cfg.init_std,
        "layer_norm_eps": cfg.layer_norm_eps,
        "use_parallel_residual": True,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": eod,
        "eos_token_id": eod,
        "pad_token_id": tokenizer.get("pad_id"),
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


# ---------------------------------------------------------------------------------------------
# checkpoint reading
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The tag directory holding mp_rank_00_model_states.pt."""
    path = Path(path)
    if (path / "mp_rank_00_model_states.pt").exists():
        return path
    if (path / "latest").exists():
        return path / (path / "latest").read_text().strip()
    if (path / "checkpoints" / "latest").exists():  # a run directory
        return resolve_checkpoint(path / "checkpoints")
    raise FileNotFoundError(f"{path}: not a DeepSpeed checkpoint (no latest file or mp_rank_00_model_states.pt)")


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelConfig, dict]:
    """(our state dict, model config, client state) from a polyko DeepSpeed checkpoint."""
    tag_dir = resolve_checkpoint(path)
    # our own checkpoint: client_state holds python objects (RNG states), so not weights_only
    state = torch.load(tag_dir / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    if "model_config" not in state:
        raise ValueError(f"{tag_dir}: no model_config in the client state (not written by polyko train)")
    cfg = ModelConfig(**state["model_config"])
    module = {k: v for k, v in state["module"].items() if not k.startswith(("rope_cos", "rope_sin"))}
    return module, cfg, state


def _tokenizer_bytes(info: dict, explicit: str | None) -> bytes | None:
    if explicit:
        data = Path(explicit).read_bytes()
    else:
        src = info.get("file")
        if not src:
            return None
        if src.startswith("package:"):
            from tokenizer.loading import default_tokenizer_bytes
            data = default_tokenizer_bytes()
        elif os.path.exists(src):
            data = Path(src).read_bytes()
        else:
            return None
    if info.get("sha256") and hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise ValueError("tokenizer file differs from the one the training shards were written with "
                         f"(sha256 {info['sha256'][:12]}...); pass --tokenizer with the right file")
    return data


def write_tokenizer_files(out: Path, data: bytes, info: dict, context: int) -> None:
    (out / "tokenizer.json").write_bytes(data)
    specials = {v: k for k, v in (info.get("special_tokens") or {}).items()}
    eod_tok = specials.get(info.get("eod_id"), "<|endoftext|>")
    pad_tok = specials.get(info.get("pad_id"))
    tok_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context,
               "bos_token": eod_tok, "eos_token": eod_tok, "unk_token": eod_tok, "clean_up_tokenization_spaces": False}
    if pad_tok:
        tok_cfg["pad_token"] = pad_tok
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False))
    special_map = {k: tok_cfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in tok_cfg}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2, ensure_ascii=False))


def export(checkpoint: str | os.PathLike, output: str | os.PathLike, dtype: str = "auto",
           tokenizer_file: str | None = None) -> Path:
    from safetensors.torch import save_file

    sd, cfg, state = load_checkpoint(checkpoint)
    tok_info = state.get("tokenizer") or {}
    hf_sd = to_hf_state_dict(sd, cfg)
    target = next(iter(hf_sd.values())).dtype if dtype == "auto" else getattr(torch, dtype)
    hf_sd = {k: v.to(target) for k, v in hf_sd.items()}
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    save_file(hf_sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_config(cfg, tok_info, target), indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": tok_info.get("eod_id", 0), "eos_token_id": tok_info.get("eod_id", 0)}, indent=2))
    data = _tokenizer_bytes(tok_info, tokenizer_file)
    if data is not None:
        write_tokenizer_files(out, data, tok_info, cfg.context_length)
    else:
        print(f"warning: tokenizer file not found ({tok_info.get('file')}); pass --tokenizer to include it")
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a training checkpoint as a Hugging Face GPT-NeoX folder")
    p.add_argument("checkpoint", help="RUN_DIR, RUN_DIR/checkpoints (latest tag) or one tag directory")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights dtype (auto: as trained)")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer.json (default: the one named in the shard manifest, sha256-checked)")
    p.set_defaults(func=lambda a: print(export(a.checkpoint, a.output, a.dtype, a.tokenizer)) or 0)

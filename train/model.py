"""GPT-NeoX as Polyglot-Ko used it, in one readable file (in the spirit of nanoGPT).

Architecture (EleutherAI GPT-NeoX / Polyglot-Ko):
  * token embedding (no learned positions), untied output embedding;
  * each block computes attention and MLP from the SAME input in parallel:
        x = x + attn(ln1(x)) + mlp(ln2(x))
  * rotary position embeddings on the first ``rotary_dim`` (64) dimensions of every head,
    "rotate-half" form, base 10000; the remaining head dimensions carry no position;
  * LayerNorm with bias (eps 1e-5), GELU MLP of 4x width, biases on every linear;
  * causal attention through ``F.scaled_dot_product_attention`` so CUDA picks the
    flash/memory-efficient kernel;
  * vocabulary padded to a multiple of 128 (tensor-core friendly matmul shapes).

The fused QKV projection here is laid out ``[3, heads, head_dim]`` along its output
dimension, so q, k and v are contiguous slices. Hugging Face's GPT-NeoX interleaves per head
(``[heads, 3, head_dim]``); ``train/export.py`` converts explicitly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

VOCAB_MULTIPLE = 128


def pad_vocab(vocab_size: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """Round a tokenizer's vocabulary up to the model's embedding rows (Polyglot-Ko: 30003 -> 30080)."""
    return ((vocab_size + multiple - 1) // multiple) * multiple


@dataclass(frozen=True)
class ModelConfig:
    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int = 30080        # already padded; Polyglot-Ko's 30003-token vocabulary -> 30080
    context_length: int = 2048
    rotary_dim: int = 64           # Polyglot-Ko: 64 rotary dimensions per head at every size
    rotary_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    mlp_ratio: int = 4
    init_std: float = 0.02

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.rotary_dim > self.head_dim or self.rotary_dim % 2:
            raise ValueError(f"rotary_dim {self.rotary_dim} must be even and <= head_dim {self.head_dim}")
        if self.vocab_size % VOCAB_MULTIPLE:
            raise ValueError(f"vocab_size {self.vocab_size} must be padded to a multiple of {VOCAB_MULTIPLE}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    def with_vocab(self, tokenizer_vocab_size: int) -> "ModelConfig":
        return replace(self, vocab_size=pad_vocab(tokenizer_vocab_size))


# Published Polyglot-Ko shapes (EleutherAI/polyglot-ko-*/config.json). Context 2048 for all.
MODEL_CONFIGS: dict[str, ModelConfig] = {
    "polyglot-ko-1.3b": ModelConfig(n_layer=24, d_model=2048, n_head=16),
    "polyglot-ko-3.8b": ModelConfig(n_layer=32, d_model=3072, n_head=24),
    "polyglot-ko-5.8b": ModelConfig(n_layer=28, d_model=4096, n_head=16),
    "polyglot-ko-12.8b": ModelConfig(n_layer=40, d_model=5120, n_head=40),
    # Tiny shapes for CPU tests and smoke runs; rotary on half of each (small) head as in 1.3B.
    "tiny": ModelConfig(n_layer=2, d_model=64, n_head=4, context_length=64, rotary_dim=8),
    "small": ModelConfig(n_layer=4, d_model=256, n_head=8, context_length=256, rotary_dim=16),
}


def get_config(name: str, **overrides) -> ModelConfig:
    if name not in MODEL_CONFIGS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_CONFIGS)}")
    return replace(MODEL_CONFIGS[name], **overrides)


def rotary_tables(cfg: ModelConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape [context, rotary_dim], fp32; frequencies repeated twice for rotate-half."""
    inv_freq = 1.0 / (cfg.rotary_base ** (torch.arange(0, cfg.rotary_dim, 2, device=device, dtype=torch.float32)
                                          / cfg.rotary_dim))
    positions = torch.arange(cfg.context_length, device=device, dtype=torch.float32)
    freqs = torch.outer(positions, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """x: [batch, heads, seq, head_dim]; rotates only the first rotary_dim dimensions."""
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    x_rot = x_rot * cos + rotate_half(x_rot) * sin
    return torch.cat((x_rot, x_pass), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.query_key_value = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=True)  # [3, heads, head_dim]
        self.dense = nn.Linear(cfg.d_model, cfg.d_model, bias=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        cfg = self.cfg
        qkv = self.query_key_value(x).view(b, s, 3, cfg.n_head, cfg.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)          # each [b, heads, s, head_dim]
        q = apply_rotary(q, cos, sin, cfg.rotary_dim)
        k = apply_rotary(k, cos, sin, cfg.rotary_dim)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.dense(y.transpose(1, 2).reshape(b, s, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=True)
        self.dense_4h_to_h = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # exact (erf) GELU: what GPT-NeoX's "gelu" activation is, so exported logits match HF
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.post_attention_layernorm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attention = Attention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # parallel residual: both branches read x, not each other's output
        return x + self.attention(self.input_layernorm(x), cos, sin) + self.mlp(self.post_attention_layernorm(x))


class GPTNeoX(nn.Module):
    def __init__(self, cfg: ModelConfig, activation_checkpointing: bool = False):
        super().__init__()
        self.cfg = cfg
        self.activation_checkpointing = activation_checkpointing
        self.embed_in = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.final_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.embed_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)  # untied from embed_in
        cos, sin = rotary_tables(cfg, device=self.embed_in.weight.device)
        # not persistent: derived from the config, so checkpoints and exports carry only weights
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        if self.embed_in.weight.device.type != "meta":
            self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        std = self.cfg.init_std
        # GPT-2/Megatron "scaled init" for the two projections that write into the residual
        # stream: each layer adds two of them, so their variance shrinks with depth.
        out_std = std / math.sqrt(2 * self.cfg.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                is_out = name.endswith("attention.dense") or name.endswith("dense_4h_to_h")
                nn.init.normal_(module.weight, 0.0, out_std if is_out else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        cos, sin = rotary_tables(self.cfg, device=self.rope_cos.device)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [batch, seq, vocab]; with ``labels`` the mean next-token cross-entropy instead.

        ``labels`` are already shifted (labels[t] is the token after input_ids[t]).
        """
        seq = input_ids.shape[1]
        if seq > self.cfg.context_length:
            raise ValueError(f"sequence length {seq} exceeds context {self.cfg.context_length}")
        x = self.embed_in(input_ids)
        cos = self.rope_cos[:seq].to(x.dtype)
        sin = self.rope_sin[:seq].to(x.dtype)
        for block in self.layers:
            if self.activation_checkpointing and self.training:
                x = checkpoint(block, x, cos, sin, use_reentrant=False)
            else:
                x = block(x, cos, sin)
        logits = self.embed_out(self.final_layer_norm(x))
        if labels is None:
            return logits
        # loss in fp32: bf16 log-softmax over 30k classes loses too much precision
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.reshape(-1))

    def compile_blocks(self, **compile_kwargs) -> "GPTNeoX":
        """torch.compile each block in place ("regional" compilation).

        The blocks are identical in code, so one compiled graph serves all of them: compiling
        takes seconds instead of the minutes a whole-model graph of n_layer unrolled blocks does,
        and activation checkpointing still wraps each (compiled) block. ``nn.Module.compile``
        keeps parameter names, so checkpoints and the Hugging Face export are unchanged.
        """
        for block in self.layers:
            block.compile(**compile_kwargs)
        return self

    @torch.no_grad()
    def generate_greedy(self, input_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding without a KV cache (evaluation/tests only; recomputes the prefix)."""
        ids = input_ids
        for _ in range(max_new_tokens):
            logits = self(ids[:, -self.cfg.context_length:])
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return ids


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(cfg: ModelConfig) -> GPTNeoX:
    """The model on the meta device: shapes and parameter counts without allocating memory."""
    with torch.device("meta"):
        return GPTNeoX(cfg)


def flops_per_token(cfg: ModelConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B convention.

    6 * N for every weight matmul (N = parameters excluding the input embedding, which is a lookup,
    and excluding biases/norms which are negligible but included for simplicity) plus
    6 * 2 * n_layer * seq * d_model for the attention score and value matmuls (causal masking
    not discounted, as in PaLM/Megatron MFU).
    """
    seq = seq_len or cfg.context_length
    d, L, V = cfg.d_model, cfg.n_layer, cfg.vocab_size
    per_layer = 3 * d * d + 3 * d + d * d + d + 2 * cfg.mlp_ratio * d * d + cfg.mlp_ratio * d + d + 4 * d
    n_matmul = L * per_layer + 2 * d + d * V
    return 6.0 * n_matmul + 12.0 * L * seq * d

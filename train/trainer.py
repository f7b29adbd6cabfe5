"""Training loop on a DeepSpeed engine, driven by one YAML config.

Run one process per device through the ``deepspeed`` launcher (``polyko train`` builds that
command), or directly for a single CPU process::

    DS_ACCELERATOR=cpu python -m train.trainer --config configs/train/tiny.yaml --data OUT --run-dir RUN

Config: ``configs/default.yaml`` section ``train:`` holds every key and default; a preset in
``configs/train/*.yaml`` overrides a subset. Everything the DeepSpeed engine sees (ZeRO stage,
bf16, clipping, micro-batch, accumulation) is derived here by :func:`deepspeed_config`, which
``polyko train --dry-run`` prints with the warmup+cosine schedule (:class:`WarmupCosine`).

Checkpoints (``RUN/checkpoints/step<N>``) hold the DeepSpeed state plus ``client_state``: the
step (= data position, see ``train.data.DistributedBatches``), the RNG states, the model config
and the data fingerprint. ``--resume`` continues from ``latest`` and reproduces the losses of
an uninterrupted run.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent


class TrainConfigError(ValueError):
    pass


# bf16: DeepSpeed's bf16 mode, bf16 weights and activations, fp32 master weights and gradients in
#   the optimizer wrapper; bf16-autocast: fp32 weights, gradients and optimizer, matmuls and
#   attention in bf16 under torch.autocast; fp32: everything fp32 (CPU tests, exact resume checks).
PRECISIONS = ("bf16", "bf16-autocast", "fp32")


# ---------------------------------------------------------------------------------------------
# config
def load_train_defaults() -> dict[str, Any]:
    import importlib.resources

    text = importlib.resources.files("configs").joinpath("default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["train"]


def _merge(defaults: dict, user: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(defaults)
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            raise TrainConfigError(f"unknown train config key {dotted!r} (known: {', '.join(sorted(defaults))})")
        default = defaults[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise TrainConfigError(f"train config key {dotted!r} must be a mapping")
            out[key] = _merge(default, value, dotted + ".")
        elif isinstance(default, dict):  # empty default: a free mapping (source_weights, deepspeed)
            if not isinstance(value, dict):
                raise TrainConfigError(f"train config key {dotted!r} must be a mapping")
            out[key] = copy.deepcopy(value)
        elif default is not None and value is not None and not isinstance(value, type(default)) \
                and not (isinstance(default, float) and isinstance(value, int)):
            raise TrainConfigError(f"train config key {dotted!r}: expected {type(default).__name__}, "
                                   f"got {type(value).__name__} {value!r}")
        else:
            out[key] = value
    return out


def _set_dotted(cfg: dict, dotted: str, value: str) -> None:
    *path, last = dotted.split(".")
    node = cfg
    for p in path:
        node = node.setdefault(p, {})
    node[last] = yaml.safe_load(value)


def load_train_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> dict:
    """Defaults <- preset file <- ``key.sub=value`` overrides, validated."""
    user: dict = {}
    if path:
        with open(path, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    for item in overrides or []:
        key, _, value = item.partition("=")
        _set_dotted(user, key, value)
    cfg = _merge(load_train_defaults(), user)
    t = cfg["training"]
    if t["precision"] not in PRECISIONS:
        raise TrainConfigError(f"training.precision must be one of {', '.join(PRECISIONS)}")
    if t["zero_stage"] not in (0, 1, 2):
        raise TrainConfigError("training.zero_stage must be 0, 1 or 2 (export reads stage <= 2 checkpoints)")
    return cfg


def model_config_from(cfg: dict, tokenizer_vocab_size: int | None = None):
    """The ModelConfig of a train config; the vocabulary comes from the config or the shards."""
    from train.model import get_config, pad_vocab

    m = cfg["model"]
    overrides = {}
    if m["context_length"]:
        overrides["context_length"] = m["context_length"]
    if m["vocab_size"]:
        overrides["vocab_size"] = m["vocab_size"]
    elif tokenizer_vocab_size:
        overrides["vocab_size"] = pad_vocab(tokenizer_vocab_size)
    model_cfg = get_config(m["name"], **overrides)
    if tokenizer_vocab_size is not None:
        check_vocab(model_cfg.vocab_size, tokenizer_vocab_size)
    return model_cfg


def check_vocab(model_vocab: int, tokenizer_vocab: int) -> None:
    from train.model import pad_vocab

    if tokenizer_vocab > model_vocab or pad_vocab(tokenizer_vocab) != model_vocab:
        raise TrainConfigError(
            f"the shards' tokenizer has {tokenizer_vocab} tokens (padded {pad_vocab(tokenizer_vocab)}) "
            f"but the model's vocabulary is {model_vocab}: retokenize or set model.vocab_size")


def batch_layout(cfg: dict, world_size: int) -> tuple[int, int, int]:
    """(micro, accumulation, global batch) in samples."""
    t = cfg["training"]
    micro, global_batch = t["micro_batch_size"], t["global_batch_size"]
    if global_batch % (micro * world_size):
        raise TrainConfigError(f"global_batch_size {global_batch} is not a multiple of micro_batch_size "
                               f"{micro} x {world_size} data-parallel ranks")
    return micro, global_batch // (micro * world_size), global_batch


def deepspeed_config(cfg: dict, world_size: int) -> dict:
    """The DeepSpeed config dict for a train config (optimizer built by us, see build_engine)."""
    t, o = cfg["training"], cfg["optimizer"]
    micro, accum, global_batch = batch_layout(cfg, world_size)
    ds = {
        "train_batch_size": global_batch,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "gradient_clipping": o["grad_clip"],
        "zero_optimization": {"stage": t["zero_stage"]},
        "bf16": {"enabled": t["precision"] == "bf16"},
        "torch_autocast": {"enabled": t["precision"] == "bf16-autocast", "dtype": "bfloat16"},
        "steps_per_print": 10 ** 9,       # we log ourselves
        "wall_clock_breakdown": False,
    }
    if t["zero_stage"] > 0:
        # bucket sizes: DeepSpeed's defaults (5e8) are fine for GPUs; overlap comm with backward
        ds["zero_optimization"].update({"overlap_comm": True, "contiguous_gradients": True})
    if t["zero_stage"] > 0 or t["precision"] == "bf16":
        # our client optimizer (torch AdamW) is not in DeepSpeed's tested list for ZeRO/bf16 wrappers
        ds["zero_allow_untested_optimizer"] = True
    return _deep_update(ds, cfg["deepspeed"])


class WarmupCosine:
    """lr multiplier for optimizer update ``s`` (0-based): linear warmup to 1 over ``warmup``
    updates (the first update already uses 1/warmup, none is wasted at lr 0), then cosine to
    ``min_ratio`` at ``total``, flat after. A class, not a lambda, so LambdaLR checkpoints it."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = max(1, warmup), total, min_ratio

    def __call__(self, s: int) -> float:
        if s < self.warmup:
            return (s + 1) / self.warmup
        progress = min(1.0, (s - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_schedule(cfg: dict) -> WarmupCosine:
    o = cfg["optimizer"]
    return WarmupCosine(o["warmup_iters"], cfg["training"]["train_iters"], o["min_lr"] / o["lr"])


def _deep_update(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


# ---------------------------------------------------------------------------------------------
# distributed setup
def ensure_single_process_env() -> None:
    """Make a plain ``python -m train.trainer`` look like rank 0 of 1 to torch.distributed."""
    if "RANK" in os.environ:
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})


def init_distributed():
    ensure_single_process_env()
    import torch
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed

    if not torch.cuda.is_available() and os.environ.get("POLYKO_DS_SHM_OP") != "1":
        # DeepSpeed's CPU backend JIT-compiles a shared-memory all-reduce op (minutes on a small
        # machine, needs a compiler at run time); gloo's all-reduce is enough for CPU runs.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    if torch.cuda.is_available():
        # before any NCCL call: otherwise every rank's first collective lands on GPU 0
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def device_peak_flops(override_tflops: float | None) -> float | None:
    """Dense bf16 peak of the local GPU (for MFU); None on CPU or an unknown GPU."""
    if override_tflops:
        return override_tflops * 1e12
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    # vendor datasheet dense (no sparsity) bf16 tensor-core peaks
    table = {"H200": 989.4e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989.4e12,
             "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}
    for key, value in table.items():
        if key in name:
            return value
    return None


# ---------------------------------------------------------------------------------------------
# engine
def build_model(model_cfg, cfg: dict):
    import torch

    from train.model import GPTNeoX

    # initialise directly on the GPU: a 12.8B model in fp32 on the host would need ~51 GB per rank
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    with device:
        model = GPTNeoX(model_cfg, activation_checkpointing=cfg["model"]["activation_checkpointing"])
    if cfg["model"]["compile"]:
        model.compile_blocks()
    return model


def param_groups(model, weight_decay: float) -> list[dict]:
    """No weight decay on biases and LayerNorm parameters (1-D tensors), as GPT-NeoX does."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_engine(model, cfg: dict, world_size: int):
    """DeepSpeed engine around ``model`` with a torch AdamW (fused on CUDA) and the config's schedule."""
    import deepspeed
    import torch

    o = cfg["optimizer"]
    cuda = torch.cuda.is_available()
    # torch's own AdamW: fused single-kernel update on CUDA, no DeepSpeed op build (FusedAdam would
    # JIT-compile for ~1 min; on CPU "torch_adam" is what DeepSpeed itself recommends)
    optimizer = torch.optim.AdamW(param_groups(model, o["weight_decay"]), lr=o["lr"],
                                  betas=tuple(o["betas"]), eps=o["eps"],
                                  **({"fused": True} if cuda else {"foreach": True}))
    schedule = lr_schedule(cfg)
    # a callable: DeepSpeed builds it on its (possibly ZeRO-wrapped) optimizer, steps it after every
    # optimizer update and saves/loads its state in checkpoints
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, config=deepspeed_config(cfg, world_size),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule))
    if world_size == 1 and cfg["training"]["zero_stage"] == 0:
        # Alone, there is nothing to average, but DeepSpeed would still flatten every gradient
        # into 500M-element buckets, "all-reduce" them over one rank and copy them back: for 1.3B
        # parameters that is ~25 GB of memory traffic per step (measured on an H100, see
        # docs/benchmarks.md). ZeRO stages 1-2 gather gradients into their partitions in that
        # step, so only stage 0 may skip it.
        engine.enable_backward_allreduce = False
    if cfg["training"]["precision"] != "bf16" and cfg["training"]["zero_stage"] == 0:
        # DeepSpeed clips fp32 gradients itself on this path (fp32, bf16-autocast at ZeRO-0) but
        # drops the norm it computed, so get_global_grad_norm() would log None. torch's foreach
        # clip is the same formula (max_norm / (norm + 1e-6), at most 1; the gradients are
        # already averaged over ranks, and there is no model parallelism) in one fused pass
        # instead of a norm kernel per parameter, and it returns the norm.
        def clip_fp32_gradients_keeping_norm():
            engine._global_grad_norm = torch.nn.utils.clip_grad_norm_(  # foreach where the device has it
                engine.module.parameters(), engine.gradient_clipping())
        engine.clip_fp32_gradients = clip_fp32_gradients_keeping_norm
    return engine, scheduler


def _rng_state() -> dict:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class MetricsLog:
    """Console + JSONL metrics (rank 0 only)."""

    def __init__(self, path: Path | None):
        self.path = path
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
        print(" ".join(parts), flush=True)


def _tokenizer_vocab(manifest: dict) -> int:
    return int(manifest["tokenizer"]["vocab_size"])


def train(cfg: dict, data_dir: str | os.PathLike, run_dir: str | os.PathLike, resume: bool = False,
          stop_at: int | None = None) -> list[dict]:
    """Train per ``cfg``; returns the metric records written (rank 0; others get []).

    ``stop_at``: end after this many steps (checkpointing first) while keeping the schedule of
    ``training.train_iters``: what an interrupted run looks like.
    """
    import numpy as np
    import torch

    from tokenizer.shards import read_manifest
    from train.data import DistributedBatches, PackedDataset
    from train.model import flops_per_token

    rank, world = init_distributed()
    t, d = cfg["training"], cfg["data"]
    run_dir = Path(run_dir)
    shards_dir = Path(data_dir) / "shards" if (Path(data_dir) / "shards" / "manifest.json").exists() else Path(data_dir)
    manifest = read_manifest(shards_dir)
    model_cfg = model_config_from(cfg, _tokenizer_vocab(manifest))
    seq_len = model_cfg.context_length
    micro, accum, global_batch = batch_layout(cfg, world)

    random.seed(t["seed"])
    np.random.seed(t["seed"] % 2**32)
    torch.manual_seed(t["seed"])

    cache_dir = Path(d["cache_dir"]) if d["cache_dir"] else run_dir / "data_index"
    # rank 0 builds the index files; the others wait and then memory-map them
    if rank == 0:
        PackedDataset(shards_dir, "train", seq_len, t["train_iters"] * global_batch, d["seed"], cache_dir,
                      d["source_weights"], build=True)
    torch.distributed.barrier()
    train_ds = PackedDataset(shards_dir, "train", seq_len, t["train_iters"] * global_batch, d["seed"],
                             cache_dir, d["source_weights"], build=False)
    batches = DistributedBatches(train_ds, micro, accum, rank, world)
    val_batches = None
    if t["eval_iters"] and any(s["split"] == "validation" for s in manifest["shards"]):
        n_val = t["eval_iters"] * micro * world
        if rank == 0:
            PackedDataset(shards_dir, "validation", seq_len, n_val, d["seed"], cache_dir, None, build=True)
        torch.distributed.barrier()
        val_ds = PackedDataset(shards_dir, "validation", seq_len, n_val, d["seed"], cache_dir, None, build=False)
        val_batches = DistributedBatches(val_ds, micro, 1, rank, world)

    model = build_model(model_cfg, cfg)
    engine, scheduler = build_engine(model, cfg, world)
    device = engine.device

    ckpt_dir = run_dir / "checkpoints"
    log = MetricsLog(run_dir / "metrics.jsonl" if rank == 0 else None)
    start_step = 0
    records: list[dict] = []
    if resume and (ckpt_dir / "latest").exists():
        _, client = engine.load_checkpoint(str(ckpt_dir))
        if client["data_fingerprint"] != train_ds.fingerprint:
            raise TrainConfigError("checkpoint was written for different data/sequence/batch settings")
        start_step = int(client["step"])
        _set_rng_state(client["rng"])
        records.append({"event": "resume", "step": start_step, "consumed_samples": client["consumed_samples"]})
        log.write(records[-1])
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_config.json").write_text(json.dumps(
            {"train": cfg, "model": model_cfg.to_dict(), "tokenizer": manifest["tokenizer"],
             "shards_dir": str(shards_dir.resolve())}, indent=1, ensure_ascii=False))

    def to_device(arr):
        tokens = torch.from_numpy(arr).to(device)
        return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def evaluate() -> float:
        engine.eval()
        total = torch.zeros((), dtype=torch.float64, device=device)
        with torch.no_grad():
            for i in range(t["eval_iters"]):
                x, y = to_device(val_batches.micro_batch(i, 0))
                total += engine(x, y).double()
        torch.distributed.all_reduce(total)
        engine.train()
        return float(total) / (t["eval_iters"] * world)

    def save(step: int) -> None:
        engine.save_checkpoint(str(ckpt_dir), tag=f"step{step}", client_state={
            "step": step, "consumed_samples": batches.consumed_samples(step), "rng": _rng_state(),
            "model_config": model_cfg.to_dict(), "data_fingerprint": train_ds.fingerprint,
            "tokenizer": manifest["tokenizer"]})

    peak = device_peak_flops(t["peak_tflops"])
    flops_tok = flops_per_token(model_cfg, seq_len)
    end_step = min(t["train_iters"], stop_at) if stop_at is not None else t["train_iters"]
    engine.train()
    last_time, tokens_since = time.perf_counter(), 0
    for step in range(start_step, end_step):
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        lr_used = float(engine.get_lr()[0])           # the lr this step's update uses
        for m in range(accum):
            x, y = to_device(batches.micro_batch(step, m))
            loss = engine(x, y)
            engine.backward(loss)
            engine.step()
            loss_sum += loss.detach().float()
        tokens_since += global_batch * seq_len
        done = step + 1
        if done % t["log_interval"] == 0 or done == end_step:
            torch.distributed.all_reduce(loss_sum)
            if device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            tok_s = tokens_since / (now - last_time)
            grad_norm = engine.get_global_grad_norm()
            record = {"step": done, "loss": float(loss_sum) / (accum * world),
                      "lr": lr_used,
                      "grad_norm": None if grad_norm is None else float(grad_norm),
                      "tokens_per_s": tok_s, "consumed_samples": batches.consumed_samples(done),
                      "mfu": (tok_s / world * flops_tok / peak) if peak else None}
            log.write(record)
            records.append(record)
            last_time, tokens_since = time.perf_counter(), 0
        if val_batches is not None and t["eval_interval"] and (done % t["eval_interval"] == 0 or done == end_step):
            val = evaluate()
            record = {"step": done, "val_loss": val, "val_ppl": math.exp(min(val, 50.0))}
            log.write(record)
            records.append(record)
            last_time = time.perf_counter()
        if t["save_interval"] and (done % t["save_interval"] == 0 or done == end_step):
            save(done)
            last_time = time.perf_counter()
    return records if rank == 0 else []


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.trainer", description="one training process")
    p.add_argument("--config", required=True, help="train YAML (configs/train/*.yaml)")
    p.add_argument("--data", required=True, help="pipeline output dir (with shards/) or a shards dir")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at", type=int, default=None, help="stop (with a checkpoint) after this step")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_train_config(args.config, args.set)
    train(cfg, args.data, args.run_dir, resume=args.resume, stop_at=args.stop_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())

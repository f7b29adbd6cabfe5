"""``polyko train``: resolve a train config against a pipeline output and launch the trainer.

    polyko train --config configs/train/polyglot-ko-1.3b.yaml --data OUT [--gpus N] [--hostfile FILE]
                 [--run-dir DIR] [--dry-run] [--resume] [--set KEY=VALUE ...]

* resolves the YAML (defaults from ``configs/default.yaml`` ``train:``), writes the resolved
  config to ``RUN_DIR/resolved_config.yaml`` and checks the shards' tokenizer against the
  model's vocabulary (and ``model.vocab_size`` if the preset pins one);
* on GPUs: runs the ``deepspeed`` launcher (``--num_gpus N`` on one node, or ``--hostfile`` for
  many) with ``--module train.trainer``, as an argument list, never a shell string;
* without a GPU: one CPU process (``DS_ACCELERATOR=cpu``, gloo) for small models only;
* ``--dry-run``: prints the command and the resolved DeepSpeed config, starts nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml

# beyond this many parameters a CPU run is refused: it would take days per step
CPU_MAX_PARAMETERS = 200_000_000


def _shards_dir(data: str) -> Path:
    d = Path(data)
    return d / "shards" if (d / "shards" / "manifest.json").exists() else d


def _hostfile_slots(path: str) -> int:
    """Total GPU slots in a DeepSpeed hostfile (``host slots=N`` lines)."""
    total = 0
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        slots = [p.split("=", 1)[1] for p in line.split() if p.startswith("slots=")]
        if not slots:
            raise ValueError(f"{path}: line {line!r} has no slots=N")
        total += int(slots[0])
    if not total:
        raise ValueError(f"{path}: no hosts")
    return total


def build_command(args, config_path: Path, run_dir: Path, use_gpu: bool) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) for the training processes."""
    trainer_args = ["--config", str(config_path.resolve()), "--data", str(Path(args.data).resolve()),
                    "--run-dir", str(run_dir.resolve())]
    if args.resume:
        trainer_args.append("--resume")
    if not use_gpu:
        # one process = rank 0 of 1; a fresh port so an inherited MASTER_PORT cannot collide
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {"DS_ACCELERATOR": "cpu", "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        return [sys.executable, "-m", "train.trainer", *trainer_args], env
    launcher = [shutil.which("deepspeed") or "deepspeed"]
    if args.hostfile:
        launcher += ["--hostfile", args.hostfile]
        if args.master_addr:
            launcher += ["--master_addr", args.master_addr]
    else:
        launcher += ["--num_gpus", str(args.gpus)]
    if args.master_port:
        launcher += ["--master_port", str(args.master_port)]
    return [*launcher, "--module", "train.trainer", *trainer_args], {}


def run(args) -> int:
    from tokenizer.shards import read_manifest
    from train.model import count_parameters, meta_model
    from train.trainer import deepspeed_config, load_train_config, model_config_from

    cfg = load_train_config(args.config, args.set)
    manifest = read_manifest(_shards_dir(args.data))
    # raises TrainConfigError when the shards' tokenizer does not fit the model's embedding
    model_cfg = model_config_from(cfg, int(manifest["tokenizer"]["vocab_size"]))
    n_params = count_parameters(meta_model(model_cfg))

    import torch

    gpu_available = torch.cuda.is_available()
    use_gpu = bool(args.hostfile) or (args.gpus or 0) > 0 or (gpu_available and args.gpus is None)
    if args.gpus is None:
        args.gpus = torch.cuda.device_count() if gpu_available else 0
    world = _hostfile_slots(args.hostfile) if args.hostfile else (args.gpus if use_gpu else 1)
    ds_config = deepspeed_config(cfg, world)
    if not use_gpu and n_params > CPU_MAX_PARAMETERS:
        raise SystemExit(f"{cfg['model']['name']} has {n_params:,} parameters: too large for a CPU run "
                         f"(limit {CPU_MAX_PARAMETERS:,}); use --gpus or --hostfile")

    run_dir = Path(args.run_dir or Path("runs") / cfg["model"]["name"])
    resolved = run_dir / "resolved_config.yaml"
    cmd, env = build_command(args, resolved, run_dir, use_gpu)
    summary = {"model": model_cfg.to_dict(), "parameters": n_params, "world_size": world,
               "tokenizer": {k: manifest["tokenizer"].get(k) for k in ("sha256", "vocab_size", "eod_id")},
               "deepspeed_config": ds_config,
               "optimizer": {**cfg["optimizer"], "impl": "torch.optim.AdamW (fused on CUDA)",
                             "schedule": f"linear warmup {cfg['optimizer']['warmup_iters']} steps, cosine to "
                                         f"min_lr at step {cfg['training']['train_iters']}"}}
    if args.dry_run:
        print("command: " + " ".join(cmd))
        if env:
            print("environment: " + " ".join(f"{k}={v}" for k, v in env.items()))
        print(json.dumps(summary, indent=2))
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved.write_text(yaml.safe_dump({k: cfg[k] for k in cfg}, sort_keys=False, allow_unicode=True))
    (run_dir / "launch.json").write_text(json.dumps({"command": cmd, **summary}, indent=2))
    print("command: " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, env={**os.environ, **env}, check=False).returncode


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train GPT-NeoX on the pipeline's token shards (DeepSpeed)")
    p.add_argument("--config", required=True, help="train YAML, e.g. configs/train/polyglot-ko-1.3b.yaml")
    p.add_argument("--data", required=True, help="pipeline output dir (containing shards/) or a shards dir")
    p.add_argument("--gpus", type=int, default=None, help="GPUs on this node (default: all visible; 0: CPU)")
    p.add_argument("--hostfile", default=None, help="DeepSpeed hostfile for multi-node runs")
    p.add_argument("--master-addr", dest="master_addr", default=None)
    p.add_argument("--master-port", dest="master_port", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="checkpoints, metrics.jsonl, data indices (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest")
    p.add_argument("--dry-run", action="store_true", help="print the command and resolved DeepSpeed config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. training.train_iters=100")
    p.set_defaults(func=run)

"""Training throughput benchmark: polyko's GPT-NeoX vs transformers' GPTNeoXForCausalLM, one run.

On a GPU (one command, a few minutes)::

    .venv/bin/python -m bench.train_gpu --model polyglot-ko-1.3b --micro-batch 4 --seq-len 2048 \
        --compile --with-plain-hf --output bench_train_gpu.json

measures the same micro-batch of the same shapes in these variants:

* ``polyko``: ``train.model.GPTNeoX`` under the trainer's own engine (``train.trainer.build_engine``:
  DeepSpeed, bf16, ZeRO stage ``--zero-stage`` (default 0 on one GPU), fused torch AdamW,
  SDPA flash attention);
* ``polyko_compiled`` (with ``--compile``): the same with each block torch.compiled
  (``GPTNeoX.compile_blocks``, what ``model.compile: true`` does in training);
* ``hf_deepspeed`` (the baseline): ``transformers.GPTNeoXForCausalLM`` with the identical config
  under DeepSpeed ZeRO-2 bf16 (DeepSpeed's AdamW with ``torch_adam``, so no op build);
* ``hf_plain`` (with ``--with-plain-hf``): the same HF model in bf16 with torch's fused AdamW, no
  DeepSpeed (the "plain transformers" reference).

On a GPU each variant runs in its own process (``--isolate``, the default there): a variant that
fails or runs out of memory is recorded with its error and the others still run, and no variant
inherits another's allocator state. Results are written after every variant.

Reported per variant: tokens/s (micro-batch x seq x steps / time of the timed steps, after
``--warmup`` untimed ones, which include compilation), MFU = tokens/s x training FLOPs per token /
peak (``train.model.flops_per_token``: 6N + 12*L*d*seq), against both the datasheet peak of the GPU
(or ``--peak-tflops``) and the bf16 matmul rate measured in the same run (an 8192^3 product), and
peak memory. The ratio of each polyko variant to the baseline is printed and written to the JSON.

On a CPU the same script runs with a tiny config (``--model tiny --device cpu``) in fp32: that is
what the test suite does to keep this script working; CPU numbers mean nothing for GPUs.
Token ids are uniform random: throughput does not depend on their values.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _bench_cfg(args, compile_model: bool, precision: str) -> dict:
    from train.trainer import load_train_config

    return load_train_config(None, [
        f"model.name={args.model}", f"model.compile={str(compile_model).lower()}",
        f"training.micro_batch_size={args.micro_batch}", f"training.global_batch_size={args.micro_batch}",
        f"training.precision={precision}", f"training.zero_stage={args.zero_stage}",
        f"training.train_iters={args.steps + args.warmup + 10}", "optimizer.warmup_iters=2",
        f"model.activation_checkpointing={str(args.activation_checkpointing).lower()}",
    ])


def _time_steps(step_fn, steps: int, warmup: int, device) -> float:
    for _ in range(warmup):
        step_fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step_fn()
    _sync(device)
    return time.perf_counter() - start


def _profile_steps(step_fn, variant: str, path: str, device, steps: int = 3) -> None:
    """Append the top operators of ``steps`` more steps (torch.profiler) to the text file ``path``."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step_fn()
        _sync(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n===== {variant}: {steps} steps, top operators by {sort} =====\n")
        f.write(prof.key_averages().table(sort_by=sort, row_limit=35, max_name_column_width=60))


def measure(variant: str, args, model_cfg) -> dict:
    import torch

    from train.trainer import build_engine

    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model_cfg.vocab_size, (args.micro_batch, args.seq_len + 1), generator=gen)
    x, y = tokens[:, :-1].to(device), tokens[:, 1:].to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)

    built = time.perf_counter()
    if variant.startswith("polyko"):
        from train.trainer import build_model

        precision = "bf16-autocast" if variant.endswith("_autocast") else args.precision
        cfg = _bench_cfg(args, compile_model="compiled" in variant, precision=precision)
        engine, _ = build_engine(build_model(model_cfg, cfg), cfg, world_size=1)

        def step():
            loss = engine(x, y)
            engine.backward(loss)
            engine.step()
            return loss
        holder = [engine]
    else:
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

        from train.export import hf_config

        hf_cfg = GPTNeoXConfig(**{k: v for k, v in hf_config(model_cfg, None, torch.float32).items()
                                 if k not in ("architectures", "model_type", "torch_dtype")})
        with device:   # initialise on the GPU: a 1.3B fp32 random init on the host takes ~20 s
            model = GPTNeoXForCausalLM(hf_cfg)
        model.config.use_cache = False
        if args.activation_checkpointing:
            model.gradient_checkpointing_enable()
        if variant == "hf_deepspeed":
            import deepspeed

            ds = {"train_batch_size": args.micro_batch, "train_micro_batch_size_per_gpu": args.micro_batch,
                  "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
                  "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
                  "bf16": {"enabled": args.precision == "bf16"},
                  "optimizer": {"type": "AdamW", "params": {"lr": 2e-4, "betas": [0.9, 0.95], "eps": 1e-8,
                                                            "weight_decay": 0.01, "torch_adam": True}},
                  "steps_per_print": 10 ** 9}
            engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=ds)

            def step():
                # HF shifts labels inside: labels = input ids (seq-1 predicted positions vs our seq)
                loss = engine(input_ids=x, labels=x).loss
                engine.backward(loss)
                engine.step()
                return loss
            holder = [engine]
        elif variant == "hf_plain":
            dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
            model = model.to(device=device, dtype=dtype)
            opt = torch.optim.AdamW(model.parameters(), lr=2e-4, **({"fused": True} if device.type == "cuda" else {}))

            def step():
                loss = model(input_ids=x, labels=x).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                return loss
            holder = [model, opt]
        else:
            raise ValueError(variant)

    build_s = time.perf_counter() - built
    warm = time.perf_counter()
    elapsed = _time_steps(step, args.steps, args.warmup, device)
    warmup_s = time.perf_counter() - warm - elapsed
    if args.profile:
        _profile_steps(step, variant, args.profile, device)
    tok_s = args.micro_batch * args.seq_len * args.steps / elapsed
    result = {"variant": variant, "tokens_per_s": tok_s, "seconds": elapsed, "steps": args.steps,
              "build_seconds": build_s, "warmup_seconds": warmup_s,
              "peak_memory_gib": (torch.cuda.max_memory_allocated() / 2**30) if device.type == "cuda" else None}
    del holder, step
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# polyko*: the trainer's engine; "_compiled": blocks torch.compiled; "_autocast": precision
# bf16-autocast (fp32 weights, bf16 matmuls) instead of --precision
VARIANTS = ("polyko", "polyko_compiled", "polyko_autocast", "polyko_compiled_autocast", "hf_deepspeed", "hf_plain")


def measured_matmul_flops(device, size: int = 8192, repeats: int = 10) -> float | None:
    """bf16 matmul rate of this GPU now (median of ``repeats`` timed products on random data)."""
    import torch

    if device.type != "cuda":
        return None
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2 * size ** 3 / sorted(times)[len(times) // 2]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.train_gpu", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="polyglot-ko-1.3b", help="train.model.MODEL_CONFIGS key")
    p.add_argument("--vocab-size", type=int, default=30080)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=None, help="default: the model's context (2048)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per variant")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (allocator, autotune, compile)")
    p.add_argument("--zero-stage", type=int, default=0, help="polyko's ZeRO stage (the baseline is always 2)")
    p.add_argument("--precision", choices=["bf16", "fp32"], default=None, help="default: bf16 on GPU, fp32 on CPU")
    p.add_argument("--compile", action="store_true", help="also time polyko with compiled blocks (polyko_compiled)")
    p.add_argument("--activation-checkpointing", action="store_true", help="all variants")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--with-plain-hf", action="store_true", help="also time HF bf16 without DeepSpeed")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=None,
                   help="exactly these variants, in this order (overrides --compile/--no-baseline/--with-plain-hf)")
    p.add_argument("--isolate", choices=["auto", "yes", "no"], default="auto",
                   help="one process per variant (auto: yes on a GPU)")
    p.add_argument("--variant-timeout", type=float, default=600.0, help="seconds per isolated variant")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (default: from GPU name)")
    p.add_argument("--output", default=None, help="write the results JSON here (rewritten after every variant)")
    p.add_argument("--profile", default=None, metavar="FILE",
                   help="after timing, profile 3 more steps per variant and append the top operators to FILE")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # an isolated variant's process
    return p


def _variants(args) -> list[str]:
    if args.variants:
        return list(args.variants)
    return (["polyko"] + (["polyko_compiled"] if args.compile else [])
            + ([] if args.no_baseline else ["hf_deepspeed"]) + (["hf_plain"] if args.with_plain_hf else []))


def _child_argv(args, variant: str, output: str) -> list[str]:
    argv = [sys.executable, "-m", "train.bench_gpu", "--model", args.model, "--vocab-size", str(args.vocab_size),
            "--micro-batch", str(args.micro_batch), "--seq-len", str(args.seq_len), "--steps", str(args.steps),
            "--warmup", str(args.warmup), "--zero-stage", str(args.zero_stage), "--precision", args.precision,
            "--device", args.device, "--variants", variant, "--isolate", "no", "--child", "--output", output]
    if args.activation_checkpointing:
        argv.append("--activation-checkpointing")
    if args.profile:
        argv += ["--profile", args.profile]
    return argv


def _run_isolated(args, variant: str) -> dict:
    """One variant in a fresh process; its failure (OOM, timeout, crash) is a result, not an abort."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "variant.json")
        start = time.perf_counter()
        try:
            # the child is its own world of one: a caller's process group (its port) is not inherited
            env = {k: v for k, v in os.environ.items()
                   if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
            proc = subprocess.run(_child_argv(args, variant, out), timeout=args.variant_timeout, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.output or "") if isinstance(exc.output, str) else (exc.output or b"").decode("utf-8", "replace")
            return {"variant": variant, "error": f"timed out after {args.variant_timeout:.0f} s",
                    "log_tail": tail[-3000:]}
        if proc.returncode != 0 or not os.path.exists(out):
            return {"variant": variant, "error": f"exit status {proc.returncode}", "log_tail": proc.stdout[-3000:],
                    "wall_seconds": time.perf_counter() - start}
        with open(out) as f:
            result = json.load(f)["results"][0]
        result["wall_seconds"] = time.perf_counter() - start
        return result


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    isolate = args.isolate == "yes" or (args.isolate == "auto" and args.device == "cuda")

    from train.model import flops_per_token, get_config, pad_vocab
    from train.trainer import device_peak_flops

    model_cfg = get_config(args.model, vocab_size=pad_vocab(args.vocab_size))
    args.seq_len = args.seq_len or model_cfg.context_length
    device = torch.device(args.device)
    if not isolate:
        from train.trainer import init_distributed

        init_distributed()
    if device.type == "cuda":
        torch.cuda.set_device(0)
    peak = device_peak_flops(args.peak_tflops)
    measured = None if args.child else measured_matmul_flops(device)
    flops_tok = flops_per_token(model_cfg, args.seq_len)

    report = {
        "model": args.model, "model_config": model_cfg.to_dict(), "micro_batch": args.micro_batch,
        "seq_len": args.seq_len, "precision": args.precision, "zero_stage_polyko": args.zero_stage,
        "activation_checkpointing": args.activation_checkpointing, "isolated": isolate,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "peak_flops": peak, "measured_matmul_flops": measured, "flops_per_token": flops_tok,
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "results": [], "ratio_vs_hf_deepspeed": None, "ratios_vs_hf_deepspeed": {},
    }
    try:
        import deepspeed
        import transformers
        report["versions"].update(deepspeed=deepspeed.__version__, transformers=transformers.__version__)
    except ImportError:
        pass
    if measured:
        print(f"bf16 matmul 8192^3: {measured / 1e12:,.0f} TFLOP/s measured; datasheet "
              f"{(peak or 0) / 1e12:,.0f}", flush=True)

    for v in _variants(args):
        r = _run_isolated(args, v) if isolate else measure(v, args, model_cfg)
        if "error" not in r:
            r["mfu"] = r["tokens_per_s"] * flops_tok / peak if peak else None
            r["mfu_vs_measured_matmul"] = r["tokens_per_s"] * flops_tok / measured if measured else None
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            mfu_m = f", {100 * r['mfu_vs_measured_matmul']:.1f}% of measured matmul" if measured else ""
            print(f"{v:16s} {r['tokens_per_s']:12,.0f} tokens/s  MFU {mfu}{mfu_m}", flush=True)
        else:
            print(f"{v:16s} FAILED: {r['error']}\n{r.get('log_tail', '')[-1500:]}", flush=True)
        report["results"].append(r)
        by = {x["variant"]: x for x in report["results"] if "error" not in x}
        if "hf_deepspeed" in by:
            base = by["hf_deepspeed"]["tokens_per_s"]
            report["ratios_vs_hf_deepspeed"] = {k: x["tokens_per_s"] / base for k, x in by.items()
                                                if k.startswith("polyko")}
            report["ratio_vs_hf_deepspeed"] = max(report["ratios_vs_hf_deepspeed"].values(), default=None)
        if args.output:
            with open(args.output, "w") as f:
                json.dump(report, f, indent=2)
    for k, ratio in report["ratios_vs_hf_deepspeed"].items():
        print(f"{k} / transformers+DeepSpeed ZeRO-2: {ratio:.2f}x (target >= 1.25x, MFU >= 60%)")
    return report


if __name__ == "__main__":
    main()

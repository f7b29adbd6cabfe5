"""Training throughput benchmark: polyko's GPT-NeoX vs transformers' GPTNeoXForCausalLM, one run.

On a GPU (one command, a few minutes)::

    .venv/bin/python -m bench.train_gpu --model polyglot-ko-1.3b --micro-batch 4 --seq-len 2048 \
        --output bench_train_gpu.json

measures, one after the other in the same process, the same micro-batch of the same shapes:

* ``polyko``: ``train.model.GPTNeoX`` under the trainer's own engine (``train.trainer.build_engine``:
  DeepSpeed, bf16, ZeRO stage ``--zero-stage`` (default 0 on one GPU), fused torch AdamW,
  SDPA flash attention; ``--compile`` adds torch.compile);
* ``hf_deepspeed`` (the baseline): ``transformers.GPTNeoXForCausalLM`` with the identical config
  under DeepSpeed ZeRO-2 bf16 (DeepSpeed's AdamW with ``torch_adam``, so no op build);
* ``hf_plain`` (with ``--with-plain-hf``): the same HF model in bf16 with torch's fused AdamW, no
  DeepSpeed (the "plain transformers" reference).

Reported per variant: tokens/s (micro-batch x seq x steps / time of the timed steps, after
``--warmup`` untimed ones), MFU = tokens/s x training FLOPs per token / device peak
(``train.model.flops_per_token``: 6N + 12*L*d*seq; peak from the GPU name or ``--peak-tflops``),
and peak memory. The ratio polyko / baseline is printed and written to the JSON.

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
import sys
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _bench_cfg(args) -> dict:
    from train.trainer import load_train_config

    return load_train_config(None, [
        f"model.name={args.model}", f"model.compile={str(args.compile).lower()}",
        f"training.micro_batch_size={args.micro_batch}", f"training.global_batch_size={args.micro_batch}",
        f"training.precision={args.precision}", f"training.zero_stage={args.zero_stage}",
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

    if variant == "polyko":
        from train.trainer import build_model

        cfg = _bench_cfg(args)
        engine, _ = build_engine(build_model(model_cfg, cfg), cfg, world_size=1)
        if args.compile:
            engine.compile()

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

    elapsed = _time_steps(step, args.steps, args.warmup, device)
    tok_s = args.micro_batch * args.seq_len * args.steps / elapsed
    result = {"variant": variant, "tokens_per_s": tok_s, "seconds": elapsed, "steps": args.steps,
              "peak_memory_gib": (torch.cuda.max_memory_allocated() / 2**30) if device.type == "cuda" else None}
    del holder, step
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


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
    p.add_argument("--compile", action="store_true", help="torch.compile polyko's model")
    p.add_argument("--activation-checkpointing", action="store_true", help="both variants")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--with-plain-hf", action="store_true", help="also time HF bf16 without DeepSpeed")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (default: from GPU name)")
    p.add_argument("--output", default=None, help="write the results JSON here")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")

    from train.model import flops_per_token, get_config, pad_vocab
    from train.trainer import device_peak_flops, init_distributed

    model_cfg = get_config(args.model, vocab_size=pad_vocab(args.vocab_size))
    args.seq_len = args.seq_len or model_cfg.context_length
    init_distributed()
    if args.device == "cuda":
        torch.cuda.set_device(0)
    peak = device_peak_flops(args.peak_tflops)
    flops_tok = flops_per_token(model_cfg, args.seq_len)

    variants = ["polyko"] + ([] if args.no_baseline else ["hf_deepspeed"]) + (["hf_plain"] if args.with_plain_hf else [])
    results = []
    for v in variants:
        r = measure(v, args, model_cfg)
        r["mfu"] = r["tokens_per_s"] * flops_tok / peak if peak else None
        results.append(r)
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(f"{v:13s} {r['tokens_per_s']:12,.0f} tokens/s  MFU {mfu}", flush=True)
    by = {r["variant"]: r for r in results}
    report = {
        "model": args.model, "model_config": model_cfg.to_dict(), "micro_batch": args.micro_batch,
        "seq_len": args.seq_len, "precision": args.precision, "zero_stage_polyko": args.zero_stage,
        "compile": args.compile, "activation_checkpointing": args.activation_checkpointing,
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "peak_flops": peak, "flops_per_token": flops_tok,
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "results": results,
        "ratio_vs_hf_deepspeed": (by["polyko"]["tokens_per_s"] / by["hf_deepspeed"]["tokens_per_s"]
                                  if "hf_deepspeed" in by else None),
    }
    try:
        import deepspeed
        import transformers
        report["versions"].update(deepspeed=deepspeed.__version__, transformers=transformers.__version__)
    except ImportError:
        pass
    if report["ratio_vs_hf_deepspeed"] is not None:
        print(f"polyko / transformers+DeepSpeed ZeRO-2: {report['ratio_vs_hf_deepspeed']:.2f}x "
              f"(target >= 1.25x, MFU >= 60%)")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()

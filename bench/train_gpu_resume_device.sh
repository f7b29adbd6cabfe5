#!/usr/bin/env bash
# GPU check of the real trainer (python -m train.trainer, the process `polyko train` launches) with
# the polyglot-ko-1.3b preset, compiled blocks and bf16-autocast, on shards the pipeline wrote
# (carry them as gpu-shards/, e.g. `cp -r out/demo/shards gpu-shards` after `make demo`):
# an uninterrupted 10-step run, and a run stopped at step 5 (checkpoint) then resumed to 10.
# Prints both runs' losses side by side and the trainer's own tokens/s and MFU.
set -u
source bench/gpu_setup.sh
DATA=${DATA:-gpu-shards}
common=(--config configs/train/polyglot-ko-1.3b.yaml --data "$DATA"
  --set training.train_iters=10 --set training.micro_batch_size=4 --set training.global_batch_size=8
  --set training.precision=bf16-autocast --set model.compile=true --set training.zero_stage=0
  --set training.eval_iters=0 --set training.log_interval=1 --set optimizer.warmup_iters=2)
rm -rf /tmp/run_a /tmp/run_b
timeout 120 python3 -m train.trainer "${common[@]}" --run-dir /tmp/run_a --set training.save_interval=0 2>&1 | grep -v -i warn | tail -4
timeout 120 python3 -m train.trainer "${common[@]}" --run-dir /tmp/run_b --set training.save_interval=5 --stop-at 5 2>&1 | grep -v -i warn | tail -2
du -sh /tmp/run_b/checkpoints/step5 2>&1
timeout 120 python3 -m train.trainer "${common[@]}" --run-dir /tmp/run_b --set training.save_interval=5 --resume 2>&1 | grep -v -i warn | tail -2
cp /tmp/run_a/metrics.jsonl "$OUT/uninterrupted.jsonl"; cp /tmp/run_b/metrics.jsonl "$OUT/resumed.jsonl"
python3 - "$OUT" <<'PY'
import json, sys
def losses(p):
    return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r}
a, b = losses(f"{sys.argv[1]}/uninterrupted.jsonl"), losses(f"{sys.argv[1]}/resumed.jsonl")
print("step  uninterrupted  resumed  |diff|  tokens/s  MFU(datasheet)")
for s in sorted(a):
    rb = b.get(s, {}).get("loss")
    d = abs(a[s]["loss"] - rb) if rb is not None else float("nan")
    print(f"{s:4d}  {a[s]['loss']:.5f}  {rb if rb is None else round(rb, 5)}  {d:.2e}  {a[s]['tokens_per_s']:,.0f}  {a[s]['mfu']}")
PY

#!/usr/bin/env bash
# The GPU check of the training stage, as one command for a lent GPU machine (docs/benchmarks.md).
# Needs DeepSpeed's wheels in .whl/ (../shared/gpu/fetch-wheels.sh) and writes under $OUT (or ./gpu-out).
#   1. micro-batch 4, context 2048, polyglot-ko-1.3b: baseline (transformers + DeepSpeed ZeRO-2 bf16),
#      polyko eager, polyko with compiled blocks (DeepSpeed bf16 and bf16-autocast), plain
#      transformers bf16; a torch.profiler table of 3 steps per variant in profiles.txt;
#   2. if time is left: micro-batch 8 for the compiled polyko variants and the baseline.
set -u
source bench/gpu_setup.sh
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv | tee "$OUT/nvidia-smi.csv"
python3 -c "import torch, transformers, deepspeed; print('torch', torch.__version__, 'transformers', transformers.__version__, 'deepspeed', deepspeed.__version__)" 2>&1 | tail -1
start=$(date +%s)
timeout "${STAGE1_S:-280}" python3 -m bench.train_gpu --model polyglot-ko-1.3b --micro-batch 4 --seq-len 2048 \
  --steps 20 --warmup 5 --variants hf_deepspeed polyko polyko_compiled polyko_compiled_autocast hf_plain --variant-timeout 150 \
  --profile "$OUT/profiles.txt" --output "$OUT/train_gpu_mb4.json" 2>&1 | grep -v -i "warn" | tee "$OUT/train_gpu_mb4.log" | tail -30
left=$(( ${BUDGET_S:-420} - ($(date +%s) - start) ))
if [ "$left" -gt 90 ]; then
  timeout "$left" python3 -m bench.train_gpu --model polyglot-ko-1.3b --micro-batch 8 --seq-len 2048 \
    --steps 15 --warmup 4 --variants polyko_compiled polyko_compiled_autocast hf_deepspeed --variant-timeout $(( left / 3 )) \
    --output "$OUT/train_gpu_mb8.json" 2>&1 | grep -v -i "warn" | tee "$OUT/train_gpu_mb8.log" | tail -12
fi

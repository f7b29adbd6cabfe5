# Sourced by the bench/train_gpu_*device.sh scripts on a lent GPU machine: output folder, and
# DeepSpeed's wheels (put into .whl/ by ../shared/gpu/fetch-wheels.sh, carried with the call)
# installed beside the image's own torch/transformers.
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
fi

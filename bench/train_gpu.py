"""`python -m bench.train_gpu`: training tokens/s and MFU, polyko vs transformers+DeepSpeed ZeRO-2.

The implementation lives in ``train/bench_gpu.py`` (documented there and in docs/training.md).
"""
from train.bench_gpu import main

if __name__ == "__main__":
    main()

"""Training stage (train/): model, packed data, DeepSpeed trainer, resume, HF export, launcher, bench.

Everything runs on the CPU with a tiny GPT-NeoX on tiny shards tokenized from real Korean text
(kowiki, CC BY-SA; nsmc reviews, CC0) in /work/shared/data. The shards are written with the
shared ``tokenizer.shards`` writer, as the pipeline writes them.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("DS_ACCELERATOR", "cpu")

import torch  # noqa: E402

# The test machine's 2 cores are shared: more than one intra-op thread makes tiny-model steps
# ~10x slower through spin-waiting, not faster.
torch.set_num_threads(1)

from tokenizer.shards import IndexedDatasetWriter, file_sha256, read_manifest, write_manifest  # noqa: E402
from train.data import DistributedBatches, PackedDataset, build_blend_indices, build_shard_indices  # noqa: E402
from train.model import GPTNeoX, count_parameters, get_config, meta_model, pad_vocab  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# fixtures: tiny shards from real Korean text
def _read_texts(path: Path, n: int, skip: int = 0) -> list[tuple[str, str]]:
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            rec = json.loads(line)
            out.append((rec["text"], rec["source"]))
            if len(out) >= n:
                break
    return out


def _tokenizer():
    """The committed polyko tokenizer (tokenizer/polyko-ko-30k.json), as the pipeline uses it."""
    from tokenizer import loading

    data = loading.default_tokenizer_bytes()
    return loading.tokenizer_from_bytes(data), loading.describe(data, "package:tokenizer/polyko-ko-30k.json")


@pytest.fixture(scope="session")
def shards_dir(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline_out")
    wiki = _read_texts(shared_data / "ko_wiki.jsonl.gz", 160)
    reviews = _read_texts(shared_data / "ko_nsmc_reviews.jsonl.gz", 40)
    val = _read_texts(shared_data / "ko_wiki.jsonl.gz", 20, skip=400)
    tok, info = _tokenizer()
    sdir = out / "shards"
    shards = []
    for name, split, docs in [("train-wiki-00000", "train", wiki), ("train-nsmc-00000", "train", reviews),
                              ("validation-00000", "validation", val)]:
        per_source: dict[str, int] = {}
        ndoc = ntok = 0
        with IndexedDatasetWriter(sdir / name, np.uint16) as w:
            for enc, (_, source) in zip(tok.encode_batch([t for t, _ in docs], add_special_tokens=False), docs):
                ids = enc.ids + [info.eod_id]
                w.add_document(ids)
                per_source[source] = per_source.get(source, 0) + len(ids)
                ndoc += 1
                ntok += len(ids)
        shards.append({"path": name, "split": split, "documents": ndoc, "tokens": ntok,
                       "sha256": {"bin": file_sha256(sdir / f"{name}.bin"), "idx": file_sha256(sdir / f"{name}.idx")},
                       "tokens_per_source": per_source})
    write_manifest(sdir, {"version": 1, "dtype": "uint16", "tokenizer": info.to_dict(), "shards": shards,
                          "totals": {}})
    return out


@pytest.fixture(scope="session")
def tokenizer_for():
    return _tokenizer()[0]


# ---------------------------------------------------------------------------------------------
# model
def test_parameter_count_matches_published_1_3b():
    # EleutherAI/polyglot-ko-1.3b: 1,331,810,304 parameters at vocabulary 30,080
    assert count_parameters(meta_model(get_config("polyglot-ko-1.3b"))) == 1_331_810_304
    assert pad_vocab(30003) == 30080 and pad_vocab(30080) == 30080 and pad_vocab(30081) == 30208


def test_named_configs_shapes():
    for name, (layers, d, heads) in {"polyglot-ko-1.3b": (24, 2048, 16), "polyglot-ko-3.8b": (32, 3072, 24),
                                     "polyglot-ko-5.8b": (28, 4096, 16), "polyglot-ko-12.8b": (40, 5120, 40)}.items():
        cfg = get_config(name)
        assert (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.context_length, cfg.rotary_dim) == (layers, d, heads, 2048, 64)
    m = meta_model(get_config("polyglot-ko-5.8b"))
    assert m.layers[0].mlp.dense_h_to_4h.weight.shape == (4 * 4096, 4096)
    assert m.embed_out.weight is not m.embed_in.weight


def test_model_is_causal_and_rotary_is_positional():
    torch.manual_seed(0)
    model = GPTNeoX(get_config("tiny", vocab_size=256)).eval()
    ids = torch.randint(0, 256, (2, 16))
    logits = model(ids)
    changed = ids.clone()
    changed[:, 10:] = (changed[:, 10:] + 7) % 256
    # positions before the change are unaffected: causal mask
    torch.testing.assert_close(model(changed)[:, :10], logits[:, :10])
    assert not torch.allclose(model(changed)[:, 10:], logits[:, 10:])
    # without learned position embeddings only rotary makes position visible: a repeated token at
    # two positions gets different logits
    rep = torch.full((1, 8), 5)
    out = model(rep)
    assert not torch.allclose(out[0, 1], out[0, 6])


# ---------------------------------------------------------------------------------------------
# data
def test_shard_indices_pack_across_documents():
    sizes = np.array([5, 3, 9, 1, 4])
    doc_idx, sample_idx, shuffle_idx = build_shard_indices(sizes, seq_len=4, num_samples=10, seed=3)
    assert sample_idx.shape == (11, 2) and sorted(shuffle_idx) == list(range(10))
    # every sample spans exactly 4 tokens of the concatenated epoch stream
    stream_pos = np.concatenate([[0], np.cumsum(sizes[doc_idx])])[sample_idx[:, 0]] + sample_idx[:, 1]
    assert list(stream_pos) == [4 * k for k in range(11)]
    assert len(doc_idx) % len(sizes) == 0  # whole epochs of permuted documents


def test_blend_follows_weights():
    ds, js = build_blend_indices(np.array([3.0, 1.0]), 4000)
    counts = np.bincount(ds)
    assert abs(counts[0] / 4000 - 0.75) < 0.005
    for d in (0, 1):  # each dataset's samples are consumed in order, none repeated
        assert list(js[ds == d]) == list(range(counts[d]))


def test_packed_dataset_deterministic_restartable_and_sharded(shards_dir, tmp_path):
    sdir = shards_dir / "shards"
    make = lambda cache: PackedDataset(sdir, "train", 64, 48, seed=7, cache_dir=cache)  # noqa: E731
    a = make(tmp_path / "a")
    b = make(tmp_path / "b")  # built independently: same samples
    assert all(np.array_equal(a[i], b[i]) for i in range(48))
    assert a[0].shape == (65,) and a[0].dtype == np.int64
    # a fresh object over the cached indices (a restart) yields the same sample at any position
    c = PackedDataset(sdir, "train", 64, 48, seed=7, cache_dir=tmp_path / "a", build=False)
    assert np.array_equal(c[37], a[37])
    other = PackedDataset(sdir, "train", 64, 48, seed=8, cache_dir=tmp_path / "a")
    assert not all(np.array_equal(a[i], other[i]) for i in range(8))
    # data-parallel ranks partition each global batch; the union is the single-rank batch
    single = DistributedBatches(a, 2, 2, rank=0, world_size=1)
    r0, r1 = (DistributedBatches(a, 2, 1, rank=r, world_size=2) for r in (0, 1))
    one = np.concatenate([single.indices(3, m) for m in range(2)])
    two = np.concatenate([r0.indices(3, 0), r1.indices(3, 0)])
    assert sorted(one) == sorted(two) == list(range(12, 16))
    # restart at step k resumes exactly where step k-1 ended: no replay, no skip
    seen = np.concatenate([single.indices(s, m) for s in range(5) for m in range(2)])
    assert list(seen) == list(range(20))


def test_source_weights_change_the_mix(shards_dir, tmp_path):
    sdir = shards_dir / "shards"
    natural = PackedDataset(sdir, "train", 64, 400, seed=1, cache_dir=tmp_path)
    boosted = PackedDataset(sdir, "train", 64, 400, seed=1, cache_dir=tmp_path, source_weights={"nsmc": 4.0})
    manifest = read_manifest(sdir)
    names = [s["path"] for s in natural.shard_specs]
    nsmc = names.index("train-nsmc-00000")
    tokens = {s["path"]: s["tokens"] for s in manifest["shards"]}
    share = tokens["train-nsmc-00000"] / (tokens["train-nsmc-00000"] + tokens["train-wiki-00000"])
    assert abs(np.mean(np.asarray(natural.dataset_index) == nsmc) - share) < 0.01
    boosted_share = 4 * share / (4 * share + (1 - share))
    assert abs(np.mean(np.asarray(boosted.dataset_index) == nsmc) - boosted_share) < 0.01
    with pytest.raises(ValueError, match="absent"):
        PackedDataset(sdir, "train", 64, 10, seed=1, cache_dir=tmp_path, source_weights={"nope": 1.0})


def test_samples_are_real_token_streams(shards_dir, tokenizer_for, tmp_path):
    ds = PackedDataset(shards_dir / "shards", "train", 64, 16, seed=2, cache_dir=tmp_path)
    text = tokenizer_for.decode([int(t) for t in ds[5]])
    assert sum("\uac00" <= ch <= "\ud7a3" for ch in text) > 20  # Hangul syllables: real Korean text


# ---------------------------------------------------------------------------------------------
# trainer (DeepSpeed engine, CPU accelerator, one gloo process)
from train.trainer import deepspeed_config, load_train_config, lr_schedule, train  # noqa: E402

TINY = REPO / "configs" / "train" / "tiny.yaml"


@pytest.fixture(scope="session")
def trained_run(shards_dir, tmp_path_factory):
    """The tiny preset trained uninterrupted for 16 steps (checkpoint and validation at 8 and 16)."""
    run = tmp_path_factory.mktemp("run_full")
    cfg = load_train_config(TINY, ["training.train_iters=16", "training.save_interval=8",
                                   "training.eval_interval=8", "optimizer.warmup_iters=2"])
    records = train(cfg, shards_dir, run)
    return cfg, run, records


def test_tiny_model_loss_falls_and_metrics_logged(trained_run):
    cfg, run, records = trained_run
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 17))
    first, last = steps[0]["loss"], np.mean([r["loss"] for r in steps[-3:]])
    assert first > last + 0.5, (first, last)           # from ln(vocab) towards the text's token statistics
    vals = [r for r in records if "val_loss" in r]
    assert [v["step"] for v in vals] == [8, 16]
    # held-out kowiki articles: the model generalises, and keeps improving between evaluations
    assert vals[1]["val_loss"] < first - 0.3 and vals[1]["val_loss"] < vals[0]["val_loss"]
    assert vals[1]["val_ppl"] == pytest.approx(np.exp(vals[1]["val_loss"]))
    lrs = [s["lr"] for s in steps]                      # linear warmup over 2 steps, cosine to min_lr
    assert lrs[0] == pytest.approx(cfg["optimizer"]["lr"] / 2) and lrs[1] == pytest.approx(cfg["optimizer"]["lr"])
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[3] < lrs[2]
    assert lrs[-1] > cfg["optimizer"]["min_lr"] and lrs[-1] < lrs[1] / 5
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["loss"] for l in lines if "loss" in l] == [s["loss"] for s in steps]
    assert all(l["tokens_per_s"] > 0 for l in lines if "loss" in l)
    assert (run / "checkpoints" / "latest").read_text().strip() == "step16"


def test_resumed_run_matches_uninterrupted(trained_run, shards_dir, tmp_path):
    cfg, _, full = trained_run
    train(cfg, shards_dir, tmp_path, stop_at=5)        # "crash" after step 5 (checkpoint written)
    resumed = train(cfg, shards_dir, tmp_path, resume=True)
    assert resumed[0] == {"event": "resume", "step": 5, "consumed_samples": 40}
    full_losses = [r["loss"] for r in full if "loss" in r][5:]
    resumed_losses = [r["loss"] for r in resumed if "loss" in r]
    assert resumed_losses == full_losses               # step for step, bit for bit (fp32 CPU)
    full_val = [r["val_loss"] for r in full if "val_loss" in r]
    assert [r["val_loss"] for r in resumed if "val_loss" in r] == full_val


def test_deepspeed_config_from_yaml():
    cfg = load_train_config(REPO / "configs" / "train" / "polyglot-ko-1.3b.yaml")
    ds = deepspeed_config(cfg, world_size=8)
    assert ds["train_batch_size"] == 1024 and ds["train_micro_batch_size_per_gpu"] == 8
    assert ds["gradient_accumulation_steps"] == 16 and ds["bf16"]["enabled"] is False
    assert ds["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"}      # the preset's bf16-autocast
    assert cfg["model"]["compile"] is True
    assert ds["zero_optimization"]["stage"] == 1 and ds["gradient_clipping"] == 1.0
    sched = lr_schedule(cfg)                            # 1000 warmup steps, cosine to 10% at 102k
    assert sched(0) == pytest.approx(1e-3) and sched(999) == 1.0 and sched(102000) == pytest.approx(0.1)
    assert sched(1000 + 101000 // 2) == pytest.approx(0.55, abs=1e-4)
    with pytest.raises(ValueError, match="not a multiple"):
        deepspeed_config(cfg, world_size=3)
    with pytest.raises(ValueError, match="unknown train config key"):
        load_train_config(TINY, ["training.learning_rate=1"])


# ---------------------------------------------------------------------------------------------
# export to Hugging Face GPT-NeoX
def test_export_loads_in_transformers_with_same_logits_and_generation(trained_run, tmp_path, tokenizer_for,
                                                                       shared_data, capsys):
    from transformers import AutoTokenizer, GPTNeoXForCausalLM

    from train.export import load_checkpoint

    _, run, _ = trained_run
    rc, _ = _polyko(["export", str(run / "checkpoints"), "--output", str(tmp_path / "hf")], capsys)
    out = tmp_path / "hf"
    assert rc == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    hf = GPTNeoXForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    sd, cfg, _ = load_checkpoint(run / "checkpoints")
    ours = GPTNeoX(cfg).eval()
    ours.load_state_dict(sd)
    text = _read_texts(shared_data / "ko_wiki.jsonl.gz", 1, skip=900)[0][0]
    hf_tok = AutoTokenizer.from_pretrained(out)
    ids = torch.tensor([hf_tok(text)["input_ids"][:48]])
    assert ids[0].tolist() == tokenizer_for.encode(text, add_special_tokens=False).ids[:48]
    with torch.no_grad():
        diff = (hf(ids).logits - ours(ids)).abs().max().item()
    assert diff < 1e-4, diff
    prompt = ids[:, :12]
    hf_gen = hf.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=hf.config.eos_token_id,
                         eos_token_id=None)
    assert torch.equal(hf_gen, ours.generate_greedy(prompt, 12))


def test_state_dict_adapter_round_trip_and_qkv_interleave():
    from train.export import from_hf_state_dict, to_hf_state_dict

    cfg = get_config("tiny", vocab_size=256)
    torch.manual_seed(1)
    sd = GPTNeoX(cfg).state_dict()
    hf = to_hf_state_dict(sd, cfg)
    back = from_hf_state_dict(hf, cfg)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
    # HF rows for head 1 are [q_1, k_1, v_1]; ours are [q_0..q_H, k_0..k_H, v_0..v_H]
    ours_qkv, hf_qkv, hd = sd["layers.0.attention.query_key_value.weight"], hf["gpt_neox.layers.0.attention.query_key_value.weight"], cfg.head_dim
    assert torch.equal(hf_qkv[3 * hd + hd:3 * hd + 2 * hd], ours_qkv[cfg.d_model + hd:cfg.d_model + 2 * hd])


# ---------------------------------------------------------------------------------------------
# polyko train (launcher)
def _polyko(argv, capsys):
    from pipeline.cli import main

    rc = main(argv)
    return rc, capsys.readouterr().out


def test_dry_run_prints_deepspeed_command_and_config(shards_dir, tmp_path, capsys):
    preset = str(REPO / "configs" / "train" / "polyglot-ko-1.3b.yaml")
    # the model's vocabulary comes from the shards' tokenizer (0 = derive); 8 GPUs on one node
    rc, out = _polyko(["train", "--config", preset, "--data", str(shards_dir), "--gpus", "8", "--dry-run",
                       "--run-dir", str(tmp_path / "run"), "--set", "model.vocab_size=0"], capsys)
    assert rc == 0
    command = out.splitlines()[0]
    assert command.startswith("command: ") and "--num_gpus 8 --module train.trainer" in command
    assert f"--data {shards_dir.resolve()}" in command and "--resume" not in command
    summary = json.loads(out[out.index("{"):])
    ds = summary["deepspeed_config"]
    assert (ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (1024, 8, 16)
    assert ds["torch_autocast"]["enabled"] and not ds["bf16"]["enabled"] and summary["world_size"] == 8
    vocab = read_manifest(shards_dir / "shards")["tokenizer"]["vocab_size"]
    assert summary["model"]["vocab_size"] == pad_vocab(vocab) and summary["model"]["n_layer"] == 24
    assert not (tmp_path / "run").exists()             # a dry run writes nothing
    # multi-node: world size from the hostfile's slots
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=8\nnode-b slots=8  # second node\n")
    rc, out = _polyko(["train", "--config", preset, "--data", str(shards_dir), "--hostfile", str(hostfile),
                       "--dry-run", "--resume", "--set", "model.vocab_size=0"], capsys)
    summary = json.loads(out[out.index("{"):])
    assert f"--hostfile {hostfile}" in out.splitlines()[0] and "--resume" in out.splitlines()[0]
    assert summary["world_size"] == 16 and summary["deepspeed_config"]["gradient_accumulation_steps"] == 8


def test_launch_rejects_tokenizer_vocab_mismatch_and_big_cpu_runs(shards_dir, capsys):
    from train.trainer import TrainConfigError

    preset = str(REPO / "configs" / "train" / "polyglot-ko-1.3b.yaml")
    with pytest.raises(TrainConfigError, match="tokenizer has"):
        _polyko(["train", "--config", preset, "--data", str(shards_dir), "--dry-run", "--gpus", "1",
                 "--set", "model.vocab_size=30208"], capsys)
    with pytest.raises(SystemExit, match="too large for a CPU run"):
        _polyko(["train", "--config", preset, "--data", str(shards_dir), "--dry-run", "--gpus", "0",
                 "--set", "model.vocab_size=0"], capsys)


def test_cpu_launch_runs_trainer_process(shards_dir, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "polyko") if (REPO / ".venv" / "bin" / "polyko").exists()
                           else "polyko", "train", "--config", str(TINY), "--data", str(shards_dir), "--gpus", "0",
                           "--run-dir", str(run), "--set", "training.train_iters=2", "--set", "training.eval_iters=1"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if "loss" in l] == [1, 2]
    assert yaml_load(run / "resolved_config.yaml")["training"]["train_iters"] == 2
    assert (run / "checkpoints" / "step2" / "mp_rank_00_model_states.pt").exists()


def yaml_load(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


# ---------------------------------------------------------------------------------------------
# GPU benchmark script, exercised on the CPU with the tiny config
def test_bench_script_runs_on_cpu_with_tiny_config(tmp_path):
    from train.bench_gpu import main
    from train.model import flops_per_token

    out = tmp_path / "bench.json"
    report = main(["--model", "tiny", "--device", "cpu", "--micro-batch", "2", "--steps", "2", "--warmup", "1",
                   "--peak-tflops", "1", "--with-plain-hf", "--output", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert [r["variant"] for r in report["results"]] == ["polyko", "hf_deepspeed", "hf_plain"]
    polyko, base = report["results"][0], report["results"][1]
    assert polyko["tokens_per_s"] > 0 and base["tokens_per_s"] > 0
    assert report["ratio_vs_hf_deepspeed"] == pytest.approx(polyko["tokens_per_s"] / base["tokens_per_s"])
    cfg = get_config("tiny")
    assert polyko["mfu"] == pytest.approx(polyko["tokens_per_s"] * flops_per_token(cfg, 64) / 1e12)
    assert report["seq_len"] == 64 and report["precision"] == "fp32"


def test_bench_script_isolates_variants_and_records_a_failing_one(tmp_path):
    from train.bench_gpu import main

    common = ["--model", "tiny", "--device", "cpu", "--micro-batch", "2", "--steps", "1", "--warmup", "1",
              "--isolate", "yes"]
    ok = main(common + ["--variants", "polyko", "--output", str(tmp_path / "ok.json")])
    assert ok["isolated"] and ok["results"][0]["variant"] == "polyko"
    assert ok["results"][0]["tokens_per_s"] > 0 and "error" not in ok["results"][0]
    # a sequence longer than the tiny model's context makes the variant's process fail: the run goes on
    bad = main(common + ["--seq-len", "65", "--variants", "polyko", "hf_plain", "--output", str(tmp_path / "bad.json")])
    assert [r["variant"] for r in bad["results"]] == ["polyko", "hf_plain"]
    assert "exceeds context" in bad["results"][0]["log_tail"] and bad["results"][0]["error"].startswith("exit status")
    assert json.loads((tmp_path / "bad.json").read_text())["results"][1]["variant"] == "hf_plain"


def _engine_steps(precision: str, allreduce: bool | None, steps: int = 3, overrides=(), deepspeed_clip=False):
    """A tiny model trained a few steps through build_engine on fixed random tokens."""
    from train.trainer import build_engine, init_distributed, load_train_config

    init_distributed()
    cfg = load_train_config(None, ["model.name=tiny", f"training.precision={precision}", "training.zero_stage=0",
                                   "training.micro_batch_size=2", "training.global_batch_size=2", *overrides])
    torch.manual_seed(0)
    model = GPTNeoX(get_config("tiny", vocab_size=256))
    engine, _ = build_engine(model, cfg, world_size=1)
    if allreduce is not None:
        engine.enable_backward_allreduce = allreduce
    if deepspeed_clip:            # DeepSpeed's own clipping method instead of build_engine's
        engine.clip_fp32_gradients = type(engine).clip_fp32_gradients.__get__(engine)
    ids = torch.randint(0, 256, (2, 65), generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(steps):
        loss = engine(ids[:, :-1], ids[:, 1:])
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return engine, losses


def test_single_rank_stage0_skips_the_gradient_allreduce_without_changing_training():
    skipped, losses = _engine_steps("fp32", allreduce=None)
    assert skipped.enable_backward_allreduce is False          # build_engine's choice for one rank
    reduced, reduced_losses = _engine_steps("fp32", allreduce=True)
    assert losses == reduced_losses                            # averaging over one rank changes nothing
    for (name, a), b in zip(skipped.module.named_parameters(), reduced.module.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_stage0_clipping_matches_deepspeeds_and_reports_the_norm():
    tight = ["optimizer.grad_clip=0.05"]          # far below the tiny model's gradient norm: every step clips
    ours, losses = _engine_steps("fp32", allreduce=None, steps=3, overrides=tight)
    theirs, their_losses = _engine_steps("fp32", allreduce=None, steps=3, overrides=tight, deepspeed_clip=True)
    assert theirs.get_global_grad_norm() is None and float(ours.get_global_grad_norm()) > 0.05
    assert losses == pytest.approx(their_losses, rel=1e-6)
    for (name, a), b in zip(ours.module.named_parameters(), theirs.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # Adam hides a uniform gradient scale, so check the clip itself on planted gradients
    params = list(ours.module.parameters())
    for p in params:
        p.grad = torch.ones_like(p)
    ours.clip_fp32_gradients()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    assert float(norm) == pytest.approx(0.05, rel=1e-4)
    assert float(ours.get_global_grad_norm()) == pytest.approx(sum(p.numel() for p in params) ** 0.5, rel=1e-5)


def test_bf16_autocast_keeps_fp32_weights_and_tracks_fp32_training():
    engine, losses = _engine_steps("bf16-autocast", allreduce=None, steps=4)
    assert all(p.dtype == torch.float32 for p in engine.module.parameters())
    assert float(engine.get_global_grad_norm()) > 0          # logged, not None, on this DeepSpeed path
    _, fp32_losses = _engine_steps("fp32", allreduce=None, steps=4)
    assert losses[-1] < losses[0]
    # bf16 matmuls: the same trajectory within bf16 rounding, not bit-identical
    assert losses != fp32_losses
    assert losses == pytest.approx(fp32_losses, rel=2e-2)


def test_flops_per_token_matches_6n_plus_attention():
    from train.model import flops_per_token

    cfg = get_config("polyglot-ko-1.3b")
    n = count_parameters(meta_model(cfg)) - cfg.vocab_size * cfg.d_model  # input embedding is a lookup
    assert flops_per_token(cfg, 2048) == pytest.approx(6 * n + 12 * 24 * 2048 * 2048)


def _assert_same_loss_and_gradients(reference, other, vocab: int = 256):
    """One forward/backward of both models on the same tokens: equal loss and gradients."""
    ids = torch.randint(0, vocab, (2, 33))
    losses = []
    for m in (reference, other):
        loss = m(ids[:, :-1], ids[:, 1:])
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    for (name, a), b in zip(reference.named_parameters(), other.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_activation_checkpointing_gives_same_loss_and_gradients():
    torch.manual_seed(0)
    plain = GPTNeoX(get_config("tiny", vocab_size=256))
    ckpt = GPTNeoX(get_config("tiny", vocab_size=256), activation_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    _assert_same_loss_and_gradients(plain, ckpt)


def test_compiled_blocks_share_one_graph_and_keep_loss_gradients_and_names():
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    cfg = get_config("tiny", vocab_size=256, n_layer=4)
    plain, compiled = GPTNeoX(cfg), GPTNeoX(cfg, activation_checkpointing=True)
    compiled.load_state_dict(plain.state_dict())
    # aot_eager traces forward and backward like inductor does, without a C++ build per test run
    compiled.compile_blocks(backend="aot_eager")
    assert list(compiled.state_dict()) == list(plain.state_dict())   # checkpoints/export unchanged
    _assert_same_loss_and_gradients(plain, compiled)
    # the 4 identical blocks reuse one compiled graph: no per-block recompilation
    assert counters["stats"]["unique_graphs"] == 1

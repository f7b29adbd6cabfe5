"""The tokenize stage end to end: WriteShards on real Korean documents in a FnApiRunner
TestPipeline; shards decode back to the kept texts exactly, megatron-core reads them, reruns are
byte-identical, and the manifest/summary account for every document and token."""
from __future__ import annotations

import gzip
import itertools
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that

from filters.base import Document
from pipeline.tokenize import WriteShards, split_of
from tokenizer.loading import load_tokenizer
from tokenizer.shards import IndexedDatasetReader, read_manifest

PII_LINE = "문의는 <|tel|> 또는 <|email|> 로 주세요. 계좌 <|acc|>"


def _records(path: Path, n: int) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, n)]


@pytest.fixture(scope="module")
def kept_docs(shared_data) -> list[Document]:
    recs = (_records(shared_data / "ko_wiki.jsonl.gz", 30)
            + _records(shared_data / "ko_nsmc_reviews.jsonl.gz", 30)
            + _records(shared_data / "ko_comments.jsonl.gz", 200))
    docs = [Document(id=str(r["id"]), text=r["text"], source=r["source"]) for r in recs]
    # documents as the PII stage leaves them: real sentences with replacement tokens
    for i, d in enumerate(docs[30:40]):
        docs.append(Document(id=f"pii-{i}", text=d.text + "\n" + PII_LINE, source="masked"))
    return docs


SECTION = {"enabled": True, "tokenizer_file": None, "batch_size": 64, "shard_tokens": 15_000,
           "validation_fraction": 0.1}


def _run(docs: list[Document], out_dir: Path, section: dict = SECTION,
         staging_dir: Path | None = None) -> tuple[list[dict], dict]:
    """Run WriteShards; return (the summaries it emitted, polyko counters)."""
    summary_file = out_dir.parent / f"{out_dir.name}.summaries.jsonl"

    def save(summary):  # runs in the (in-process) worker: hand the result back through a file
        with open(summary_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(summary, ensure_ascii=False) + "\n")

    def exactly_one(items):
        assert len(items) == 1, items

    summary_file.unlink(missing_ok=True)
    p = test_pipeline.TestPipeline(runner="FnApiRunner")
    out = p | beam.Create(docs, reshuffle=False) | WriteShards(
        section, str(out_dir), staging_dir=str(staging_dir) if staging_dir else None)
    out | beam.Map(save)
    assert_that(out, exactly_one)
    result = p.run()
    result.wait_until_finish()
    counters = {r.key.metric.name: r.committed for r in result.metrics().query()["counters"]
                if r.key.metric.namespace == "polyko"}
    summaries = [json.loads(line) for line in summary_file.read_text(encoding="utf-8").splitlines()]
    return summaries, counters


@pytest.fixture(scope="module")
def first_run(kept_docs, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    summaries, counters = _run(kept_docs, out)
    return out, summaries, counters


def test_shards_decode_to_kept_texts(first_run, kept_docs):
    out, summaries, counters = first_run
    manifest = read_manifest(out / "shards")
    tok = load_tokenizer()
    eod = manifest["tokenizer"]["eod_id"]
    by_id = {d.id: d for d in kept_docs}
    seen: dict[str, str] = {}
    for shard in manifest["shards"]:
        reader = IndexedDatasetReader(shard["prefix"])
        assert reader.dtype == np.uint16 and manifest["dtype"] == "uint16"
        assert len(reader) == shard["documents"] and reader.num_tokens == shard["tokens"]
        for i in range(len(reader)):
            ids = reader[i].tolist()
            assert ids[-1] == eod and eod not in ids[:-1]
            text = tok.decode(ids[:-1], skip_special_tokens=False)
            # find which kept doc this is: texts are unique in this sample
            matches = [d for d in kept_docs if d.text == text]
            assert len(matches) == 1, text[:80]
            doc = matches[0]
            assert doc.id not in seen
            seen[doc.id] = shard["path"]
            assert split_of(doc.id, SECTION["validation_fraction"]) == shard["split"]
    assert set(seen) == set(by_id)
    # PII tokens stay single ids
    tel = tok.token_to_id("<|tel|>")
    pii_shards = {seen[d.id] for d in kept_docs if d.source == "masked"}
    n_tel = sum(int((IndexedDatasetReader(s["prefix"])[i] == tel).sum())
                for s in manifest["shards"] if s["path"] in pii_shards
                for i in range(s["documents"]))
    assert n_tel == 10


def test_manifest_and_summary_account_for_everything(first_run, kept_docs):
    out, summaries, counters = first_run
    manifest = read_manifest(out / "shards")
    totals = manifest["totals"]
    n_tokens = sum(s["tokens"] for s in manifest["shards"])
    assert totals["documents"] == len(kept_docs) == counters["tokenize.docs"] == counters["tokenize.in"]
    assert totals["tokens"] == n_tokens == counters["tokenize.tokens"]
    # several shards per the token target, both splits present
    assert totals["per_split"]["train"]["shards"] >= 3
    assert totals["per_split"]["validation"]["documents"] > 0
    assert sum(v["documents"] for v in totals["per_split"].values()) == len(kept_docs)
    sources = {d.source for d in kept_docs}
    assert set(totals["per_source"]) == sources
    assert sum(v["tokens"] for v in totals["per_source"].values()) == n_tokens
    for s in manifest["shards"]:
        assert sum(s["tokens_per_source"].values()) == s["tokens"]
        assert len(s["sha256"]["bin"]) == 64
    tinfo = manifest["tokenizer"]
    assert tinfo["vocab_size"] == 30_007 and tinfo["special_tokens"]["<|endoftext|>"] == tinfo["eod_id"]
    summary = summaries[0]
    assert summary["totals"] == totals and summary["tokenizer"]["sha256"] == tinfo["sha256"]
    assert [s["path"] for s in summary["shards"]] == [s["path"] for s in manifest["shards"]]
    json.dumps(summary)  # goes into stats.json
    # only the manifest's files are in the directory (no temp files)
    expected = {"manifest.json"} | {s["path"] + e for s in manifest["shards"] for e in (".bin", ".idx")}
    assert set(os.listdir(out / "shards")) == expected


def test_megatron_core_reads_every_shard(first_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    out, _, _ = first_run
    for shard in read_manifest(out / "shards")["shards"]:
        ours = IndexedDatasetReader(shard["prefix"])
        theirs = IndexedDataset(shard["prefix"])
        assert len(theirs) == len(ours)
        for i in range(len(ours)):
            assert np.array_equal(theirs[i], ours[i])


def test_rerun_is_byte_identical_and_order_independent(first_run, kept_docs, tmp_path):
    out1, summaries1, _ = first_run
    out2 = tmp_path / "run2"
    # a different input order (and so different bundles) must not change a byte
    summaries2, _ = _run(list(reversed(kept_docs)), out2)
    names = sorted(os.listdir(out1 / "shards"))
    assert names == sorted(os.listdir(out2 / "shards"))
    for name in names:
        assert (out1 / "shards" / name).read_bytes() == (out2 / "shards" / name).read_bytes(), name
    assert summaries1 == summaries2


def test_staged_tokens_give_the_same_shards_byte_for_byte(first_run, kept_docs, tmp_path):
    """The local runner's path (encoded documents on disk, bucket files per shard) writes exactly
    the shards of the shuffle path, and a counter-check: several shards per split."""
    out1, summaries1, counters1 = first_run
    staging = tmp_path / "staging"
    summaries2, counters2 = _run(list(reversed(kept_docs)), tmp_path / "staged", staging_dir=staging)
    names = sorted(os.listdir(out1 / "shards"))
    assert names == sorted(os.listdir(tmp_path / "staged" / "shards"))
    assert sum(n.startswith("train-") for n in names) >= 4
    for name in names:
        assert (out1 / "shards" / name).read_bytes() == (tmp_path / "staged" / "shards" / name).read_bytes(), name
    assert summaries1 == summaries2
    assert counters1["tokenize.tokens"] == counters2["tokenize.tokens"]
    assert any(staging.iterdir())  # the tokens really went through staging files


def test_rerun_into_same_dir_replaces_stale_shards(kept_docs, tmp_path):
    section = dict(SECTION, shard_tokens=10_000)
    _run(kept_docs, tmp_path)
    many = read_manifest(tmp_path / "shards")["totals"]["shards"]
    section2 = dict(SECTION, shard_tokens=10**9)  # one shard per split now
    (tmp_path / "shards" / "train-00000.bin.tmp-1-deadbeef").write_bytes(b"half a shard")
    _run(kept_docs[:50], tmp_path, section2)
    manifest = read_manifest(tmp_path / "shards")
    assert many > manifest["totals"]["shards"]
    assert manifest["totals"]["documents"] == 50
    expected = {"manifest.json"} | {s["path"] + e for s in manifest["shards"] for e in (".bin", ".idx")}
    assert set(os.listdir(tmp_path / "shards")) == expected


def test_empty_input_writes_empty_manifest(tmp_path):
    # a partial section: the rest comes from configs/default.yaml
    summaries, _ = _run([], tmp_path, {"validation_fraction": 0.2})
    manifest = read_manifest(tmp_path / "shards")
    from pipeline.config import load_defaults

    defaults = load_defaults()["tokenize"]
    assert manifest["config"] == {"batch_size": defaults["batch_size"], "shard_tokens": defaults["shard_tokens"],
                                  "validation_fraction": 0.2}
    assert manifest["shards"] == [] and manifest["totals"]["tokens"] == 0
    assert summaries[0]["totals"]["documents"] == 0


def test_custom_tokenizer_file_and_int32(tmp_path, kept_docs):
    """tokenize.tokenizer_file names another tokenizer; a vocabulary over 65535 ids gets int32."""
    from tokenizers import AddedToken

    tok = load_tokenizer()
    # grow the vocabulary past uint16 with added tokens (ids > 65535) that real text uses
    tok.add_tokens([AddedToken(f"<|extra{i}|>", special=True) for i in range(36_000)])
    path = tmp_path / "big.json"
    tok.save(str(path))
    docs = kept_docs[:20] + [Document(id="big", text="끝 <|extra35999|> 끝", source="x")]
    out = tmp_path / "out"
    summaries, _ = _run(docs, out, dict(SECTION, tokenizer_file=str(path)))
    manifest = read_manifest(out / "shards")
    assert manifest["dtype"] == "int32" and manifest["tokenizer"]["file"] == str(path)
    big_id = tok.token_to_id("<|extra35999|>")
    assert big_id > 65535
    found = False
    for s in manifest["shards"]:
        r = IndexedDatasetReader(s["prefix"])
        assert r.dtype == np.int32
        found |= any(big_id in r[i] for i in range(len(r)))
    assert found


def test_cli_inspect(first_run, capsys, tmp_path):
    import shutil

    from pipeline.cli import main

    out = tmp_path / "copy"
    shutil.copytree(first_run[0] / "shards", out / "shards")  # we damage it below
    rc = main(["shards", "inspect", str(out / "shards"), "--decode", "1", "--chars", "40"])
    printed = capsys.readouterr().out
    assert rc == 0
    manifest = read_manifest(out / "shards")
    assert f"{manifest['totals']['documents']:,} documents" in printed
    assert printed.count("doc 0 (") == len(manifest["shards"])
    assert "MISMATCH" not in printed and "ERROR" not in printed
    # a truncated shard is reported, with a non-zero exit
    first = manifest["shards"][0]["prefix"] + ".bin"
    with open(first, "r+b") as f:
        f.truncate(os.path.getsize(first) - 2)
    rc = main(["shards", "inspect", str(out / "shards")])
    assert rc == 1 and "truncated or mismatched" in capsys.readouterr().out


def test_both_encoder_backends_write_the_same_shards_byte_for_byte(first_run, kept_docs, tmp_path):
    """tokenize.encoder=auto (tiktoken for the default tokenizer) and =tokenizers: same shards;
    the manifest names the library that encoded them."""
    out, _, _ = first_run
    slow = tmp_path / "slow"
    _run(kept_docs, slow, {**SECTION, "encoder": "tokenizers"})
    fast_manifest, slow_manifest = read_manifest(out / "shards"), read_manifest(slow / "shards")
    assert fast_manifest["encoder"].startswith("tiktoken ")
    assert slow_manifest["encoder"].startswith("tokenizers ")
    assert [r["sha256"] for r in fast_manifest["shards"]] == [r["sha256"] for r in slow_manifest["shards"]]
    assert fast_manifest["totals"] == slow_manifest["totals"]


def test_encoder_ships_the_default_tokenizer_by_checksum_and_others_compressed(kept_docs):
    """The Encode step is pickled to every worker: the packaged tokenizer travels as its checksum
    (a few hundred bytes), any other file compressed, and both encode as the original."""
    import pickle

    from pipeline.tokenize import DocumentEncoder
    from tokenizer.loading import default_tokenizer_bytes

    default = default_tokenizer_bytes()
    custom = default.replace(b'"<|endoftext|>"', b'"<|endoftext|>"') + b"\n"   # same vocab, other bytes
    for data, bound, backend in ((default, 2_000, "tokenizers"), (custom, len(custom) // 2, "tokenizers"),
                                 (default, 2_000, "tiktoken"), (custom, len(custom) // 2, "tiktoken")):
        encoder = DocumentEncoder(data, 2, "uint16", 0.0, backend)
        encoder.setup()                              # a set-up encoder pickles without the tokenizer
        shipped = pickle.dumps(encoder)
        assert len(shipped) < bound
        copy = pickle.loads(shipped)
        assert copy.tokenizer_json == data and copy.tokenizer is None
        assert copy.encode(kept_docs[:20]) == encoder.encode(kept_docs[:20])
    # the encoder's ids (encode_batch_fast, no offsets) are encode_batch's, plus the end-of-document id
    bare = load_tokenizer().encode_batch([d.text for d in kept_docs], add_special_tokens=False)
    ours = DocumentEncoder(default, 2, "uint16", 0.0).encode(kept_docs)
    assert [np.frombuffer(t, dtype=np.uint16).tolist() for *_, t in ours] == [e.ids + [2] for e in bare]

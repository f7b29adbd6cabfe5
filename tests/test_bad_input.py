"""Bad input: every case gives a clear error, goes to errors/, and loses nothing (accounting holds)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.cli import main as polyko
from pipeline.io import InputError, read_file_documents, read_jsonl_records
from pipeline.run import RunError, run
from pipeline.stats import load_stats

SPINE_ONLY = ["langid.enabled=false", "quality.enabled=false", "dedup.enabled=false", "pii.enabled=false",
              "tokenize.enabled=false"]


@pytest.fixture(scope="module")
def real(shared_data):
    """Real Korean lines to build bad records from (NSMC reviews, one kowiki article)."""
    reviews, wiki = [], None
    with gzip.open(shared_data / "ko_nsmc_single.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if len(r["text"]) > 20:
                reviews.append(r)
            if len(reviews) == 60:
                break
    with gzip.open(shared_data / "ko_wiki.jsonl.gz", "rt", encoding="utf-8") as fh:
        wiki = json.loads(next(fh))
    return {"reviews": reviews, "wiki": wiki}


def line(rec) -> bytes:
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def bad_dir(real, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rv = real["reviews"]
    # malformed JSON lines between good ones
    (d / "malformed.jsonl").write_bytes(line(rv[0]) + line(rv[1])[:25] + b"\n" + rv[2]["text"].encode() + b"\n"
                                        + line(rv[3]))
    # no text / non-string text / not an object
    (d / "fields.jsonl").write_bytes(line({"id": "no-text", "body": rv[4]["text"]}) + line({"id": "int", "text": 123})
                                     + line({"id": "null", "text": None}) + line([rv[5]["text"]]) + line(rv[6]))
    # invalid UTF-8 in the middle of a real review (a CP949 byte pair)
    (d / "utf8.jsonl").write_bytes(line(rv[7]) + line(rv[8]).replace(rv[8]["text"][:2].encode(), "좋".encode("cp949"))
                                   + line(rv[9]))
    # NUL bytes: escaped inside a string (kept, removed by normalisation), raw inside a string
    # (accepted, removed), raw outside a string (malformed -> errors)
    (d / "nul.jsonl").write_bytes(line({"id": "nul-escaped", "text": rv[10]["text"] + "\u0000끝"})
                                  + line({"id": "nul-raw", "text": rv[11]["text"] + "\x00"}).replace(b"\\u0000", b"\x00")
                                  + b'\x00{"id": "nul-outside", "text": "x"}\n')
    # truncated gzip: 40 real reviews, cut in the middle of the compressed stream
    full = gzip.compress(b"".join(line(r) for r in rv[12:52]))
    (d / "truncated.jsonl.gz").write_bytes(full[: len(full) * 6 // 10])
    # empty files
    (d / "empty.jsonl").write_bytes(b"")
    (d / "empty2.jsonl.gz").write_bytes(gzip.compress(b""))
    # one 20 MB document made of a real article repeated
    text = real["wiki"]["text"]
    big = (text + "\n") * (20_000_000 // len(text.encode()) + 1)
    (d / "big.jsonl").write_bytes(line({"id": "big-20mb", "text": big, "source": "kowiki_20220916"}))
    return d


def test_reader_errors_are_precise_per_case(bad_dir):
    docs, errs = read_file_documents(str(bad_dir / "malformed.jsonl"))
    assert len(docs) == 2 and [(e["position"], e["error"].split(":")[0]) for e in errs] == [
        (1, "malformed JSON"), (2, "malformed JSON")]
    assert errs[0]["snippet"] and len(errs[0]["snippet"]) <= 300
    docs, errs = read_file_documents(str(bad_dir / "fields.jsonl"))
    assert [d.text for d in docs] and [e["position"] for e in errs] == [0, 1, 2, 3]
    assert "no 'text' field" in errs[0]["error"] and "int, not a string" in errs[1]["error"]
    assert "NoneType" in errs[2]["error"] and "not an object" in errs[3]["error"]
    docs, errs = read_file_documents(str(bad_dir / "utf8.jsonl"))
    assert len(docs) == 2 and errs[0]["position"] == 1 and "invalid UTF-8" in errs[0]["error"]
    assert "\\x" in errs[0]["snippet"]  # raw bytes kept visible in the snippet
    docs, errs = read_file_documents(str(bad_dir / "nul.jsonl"))
    assert [d.id for d in docs] == ["nul-escaped", "nul-raw"] and "\x00" in docs[0].text
    assert [e["position"] for e in errs] == [2]
    docs, errs = read_file_documents(str(bad_dir / "truncated.jsonl.gz"))
    assert 0 < len(docs) < 40 and len(errs) == 1
    assert errs[0]["position"] == len(docs) and errs[0]["error"].startswith("truncated")
    for name in ("empty.jsonl", "empty2.jsonl.gz"):
        docs, errs = read_file_documents(str(bad_dir / name))
        assert docs == [] and len(errs) == 1 and "empty input file" in errs[0]["error"]
    docs, errs = read_file_documents(str(bad_dir / "big.jsonl"))
    assert len(docs) == 1 and len(docs[0].text.encode()) > 20_000_000 and not errs
    docs, errs = read_file_documents(str(bad_dir / "big.jsonl"), {"max_document_bytes": 1_000_000})
    assert docs == [] and "max_document_bytes" in errs[0]["error"]


def test_run_over_all_bad_inputs_completes_and_accounts_for_everything(bad_dir, tmp_path):
    out = tmp_path / "run"
    stats = run([str(bad_dir / "*")], str(out), overrides=SPINE_ONLY, beam_args=["--runner=FnApiRunner"],
                progress=False)
    d = stats["documents"]
    assert stats["accounting"]["ok"] and d["in"] == d["kept"] + d["rejected"] + d["errors"]
    errors = read_jsonl_records(str(out / "errors"))
    kept = read_jsonl_records(str(out / "kept"))
    assert len(errors) == d["errors"] and len(kept) == d["kept"]
    by_file = {}
    for e in errors:
        by_file.setdefault(Path(e["file"]).name, []).append(e["position"])
    assert sorted(by_file["malformed.jsonl"]) == [1, 2]
    assert sorted(by_file["fields.jsonl"]) == [0, 1, 2, 3]
    assert by_file["utf8.jsonl"] == [1] and by_file["nul.jsonl"] == [2]
    assert len(by_file["truncated.jsonl.gz"]) == 1 and by_file["empty.jsonl"] == [0] and by_file["empty2.jsonl.gz"] == [0]
    assert stats["errors_by_kind"] == {"json": 3, "missing_text": 1, "bad_text": 2, "not_object": 1,
                                       "invalid_utf8": 1, "truncated": 1, "empty_file": 2}
    kept_ids = {r["id"] for r in kept}
    assert {"nul-escaped", "nul-raw", "big-20mb"} <= kept_ids
    nul = next(r for r in kept if r["id"] == "nul-escaped")
    assert "\x00" not in nul["text"] and nul["text"].endswith("끝")  # normalised: NUL removed
    big = next(r for r in kept if r["id"] == "big-20mb")
    assert len(big["text"].encode()) > 19_000_000


def test_glob_matching_nothing_fails_before_start(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="matches no files"):
        run([str(tmp_path / "nothing-*.jsonl.gz")], str(out), overrides=SPINE_ONLY,
            beam_args=["--runner=FnApiRunner"])
    assert not out.exists()
    rc = polyko(["run", str(tmp_path / "nothing-*.jsonl.gz"), "--output", str(out), "--runner=FnApiRunner"])
    assert rc == 2 and "matches no files" in capsys.readouterr().err


def test_output_dir_holding_a_run_is_refused_unless_overwrite(real, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(line(r) for r in real["reviews"][:5]))
    out = tmp_path / "out"
    args = ["run", str(src), "--output", str(out), "--runner=FnApiRunner", "-q"]
    args += [a for s in SPINE_ONLY for a in ("--set", s)]
    assert polyko(args) == 0
    first = load_stats(str(out))["run_id"]
    assert polyko(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert load_stats(str(out))["run_id"] == first  # untouched
    # a failed/interrupted run (temp folder left behind) also counts as a run
    (out / "stats.json").unlink()
    (out / "_polyko_tmp" / "x").mkdir(parents=True)
    with pytest.raises(RunError, match="_polyko_tmp"):
        run([str(src)], str(out), overrides=SPINE_ONLY, beam_args=["--runner=FnApiRunner"], progress=False)
    (out / "report.html").write_text("<html>report of the previous run</html>", encoding="utf-8")
    assert polyko(args + ["--overwrite"]) == 0
    # nothing of the previous run survives: the report is this run's (or absent if switched off)
    report = out / "report.html"
    assert not report.exists() or "report of the previous run" not in report.read_text(encoding="utf-8")
    stats = load_stats(str(out))
    assert not report.exists() or stats["run_id"] in report.read_text(encoding="utf-8")
    assert stats["run_id"] != first and stats["documents"]["kept"] == 5
    assert not (out / "_polyko_tmp").exists() and len(read_jsonl_records(str(out / "kept"))) == 5


def test_truncated_and_corrupt_zstd_and_gzip(real, tmp_path):
    import zstandard

    payload = b"".join(line(r) for r in real["reviews"]) * 50  # ~3000 real lines
    whole = zstandard.ZstdCompressor().compress(payload)
    (tmp_path / "cut.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    docs, errs = read_file_documents(str(tmp_path / "cut.jsonl.zst"))
    assert len(docs) < payload.count(b"\n") and len(errs) == 1
    assert errs[0]["error"].startswith("truncated") and errs[0]["position"] == len(docs)
    # two concatenated frames are one valid stream
    (tmp_path / "two.jsonl.zst").write_bytes(whole + zstandard.ZstdCompressor().compress(line(real["wiki"])))
    docs, errs = read_file_documents(str(tmp_path / "two.jsonl.zst"))
    assert not errs and len(docs) == payload.count(b"\n") + 1 and docs[-1].id == real["wiki"]["id"]
    (tmp_path / "garbage.jsonl.gz").write_bytes(line(real["wiki"]))  # named .gz, not gzip
    docs, errs = read_file_documents(str(tmp_path / "garbage.jsonl.gz"))
    assert docs == [] and len(errs) == 1 and "corrupt_stream" in errs[0]["error"]

"""Readers for every input format (plain Python and through Beam), and the JSONL writer."""
from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.io import (InputError, ReadDocuments, WriteJsonl, check_inputs, decode_bytes, detect_format,
                         html_charset, read_file_documents, read_jsonl_records)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def records(shared_data):
    """40 real records: kowiki articles and NSMC single reviews, with their own fields."""
    out = []
    for name, n in (("ko_wiki.jsonl.gz", 20), ("ko_nsmc_single.jsonl.gz", 20)):
        with gzip.open(shared_data / name, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i == n:
                    break
                out.append(json.loads(line))
    return out


def write_jsonl(path: Path, recs, opener=open):
    with opener(path, "wt", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_family_reads_every_record_with_fields(tmp_path, records, suffix):
    path = tmp_path / f"in{suffix}"
    if suffix.endswith(".gz"):
        write_jsonl(path, records, gzip.open)
    elif suffix.endswith(".zst"):
        import zstandard

        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        write_jsonl(path, records)
    docs, errors = read_file_documents(str(path))
    assert errors == []
    assert [d.id for d in docs] == [r["id"] for r in records]
    assert [d.text for d in docs] == [r["text"] for r in records]
    assert {d.source for d in docs} == {"kowiki_20220916", "nsmc"}
    wiki = docs[0]
    assert wiki.metadata["license"].startswith("CC-BY-SA") and "url" in wiki.metadata
    assert "text" not in wiki.metadata and "id" not in wiki.metadata and "source" not in wiki.metadata


def test_jsonl_metadata_is_read_exactly_as_the_standard_parser_reads_it(tmp_path, records):
    """Input lines go through orjson where it agrees with json (pipeline/jsonl.py): a big
    integer, NaN, a raw tab in a string and a lone surrogate escape still read as json reads them."""
    lines = [json.dumps({**records[0], "crawl_id": 2 ** 70, "score": 1.5}, ensure_ascii=False),
             json.dumps({**records[1], "score": float("nan")}, ensure_ascii=False),
             '{"id": "tab", "text": "' + records[2]["text"][:60] + '\\t끝\t(raw tab)", "note": "\\ud800"}']
    path = tmp_path / "edge.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs, errors = read_file_documents(str(path))
    assert errors == [] and len(docs) == 3
    assert docs[0].metadata["crawl_id"] == 2 ** 70 and type(docs[0].metadata["crawl_id"]) is int
    assert docs[1].metadata["score"] != docs[1].metadata["score"]          # NaN, as json reads it
    assert docs[2].text.endswith("\t끝\t(raw tab)") and docs[2].metadata["note"] == "\ud800"


def test_missing_id_and_source_get_deterministic_defaults(tmp_path, records):
    path = write_jsonl(tmp_path / "bare.jsonl", [{"text": r["text"]} for r in records[:3]])
    docs, _ = read_file_documents(str(path))
    assert [d.id for d in docs] == ["bare.jsonl:0", "bare.jsonl:1", "bare.jsonl:2"]
    assert {d.source for d in docs} == {"bare.jsonl"}
    assert read_file_documents(str(path))[0][2].id == docs[2].id


def test_custom_field_names_from_config(tmp_path, records):
    path = write_jsonl(tmp_path / "c.jsonl", [{"body": r["text"], "doc": r["id"], "site": "x"} for r in records[:2]])
    docs, errors = read_file_documents(str(path), {"text_field": "body", "id_field": "doc", "source_field": "site"})
    assert not errors and docs[0].id == records[0]["id"] and docs[0].source == "x" and docs[0].text == records[0]["text"]


def test_parquet_reader(tmp_path, records):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": r["id"], "text": r["text"], "source": r["source"], "license": r["license"]} for r in records]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet", row_group_size=7)
    docs, errors = read_file_documents(str(tmp_path / "in.parquet"))
    assert not errors
    assert [d.text for d in docs] == [r["text"] for r in records]
    assert docs[-1].metadata == {"license": records[-1]["license"]}


def test_txt_reader_one_document_per_file_and_cp949(tmp_path, records):
    text = records[0]["text"]
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write(text)
    review = next(r["text"] for r in records if r["source"] == "nsmc" and len(r["text"]) > 20)
    (tmp_path / "c.txt").write_bytes(("안녕하세요 " + review).encode("cp949", errors="ignore") * 3)
    for name in ("a.txt", "b.txt.gz"):
        docs, errors = read_file_documents(str(tmp_path / name))
        assert not errors and len(docs) == 1 and docs[0].text == text and docs[0].id == f"{name}:0"
    docs, errors = read_file_documents(str(tmp_path / "c.txt"))
    assert not errors and docs[0].text.startswith("안녕하세요") and docs[0].metadata["charset"] != "utf-8"


def test_warc_reader_decodes_euc_kr_and_extracts_main_text(shared_data):
    docs, errors = read_file_documents(str(FIXTURES / "ko_pages.warc.gz"))
    assert errors == []
    assert len(docs) == 3  # warcinfo, requests and the PNG response are not documents
    with gzip.open(shared_data / "ko_wiki.jsonl.gz", "rt", encoding="utf-8") as fh:
        titles = {}
        for line in fh:
            r = json.loads(line)
            titles[r["title"]] = r["text"]
            if len(titles) > 200:
                break
    euc_header, euc_meta, utf8 = docs
    assert euc_header.metadata["url"] == "http://example.kr/page1.html"
    assert "소크라테스" in euc_header.text and "\ufffd" not in euc_header.text
    assert "크릭" in euc_meta.text and "\ufffd" not in euc_meta.text  # charset only in <meta>
    # the article's first sentence comes through byte-exact after decoding
    first = titles["소크라테스의 변론"].split("\n")[0][:60]
    assert first in euc_header.text
    for d in docs:
        assert "회원가입" not in d.text and "All rights reserved" not in d.text  # boilerplate removed
        assert d.source == "ko_pages.warc.gz"
    assert utf8.metadata["charset"] == "utf-8" and "명작" in utf8.text


def test_wet_reader_takes_conversion_records_as_text():
    docs, errors = read_file_documents(str(FIXTURES / "ko_pages.wet.gz"))
    assert not errors and len(docs) == 3
    assert docs[0].text.startswith("《소크라테스의 변론》") and docs[0].metadata["url"].endswith("page1.html")


def test_charset_helpers():
    body = '<html><head><meta charset="euc-kr"></head><body>한국어</body></html>'.encode("cp949")
    assert html_charset(None, body) == "euc-kr"
    assert html_charset("text/html; charset=UTF-8", body) == "UTF-8"
    text, enc = decode_bytes(body, "euc-kr")
    assert "한국어" in text and enc == "cp949"
    text, enc = decode_bytes("똠방각하".encode("cp949"), "EUC-KR")  # CP949-only syllable "똠"
    assert text == "똠방각하"


def test_detect_format_and_unsupported_names():
    assert detect_format("gs://b/x/part-1.jsonl.zst") == ("jsonl", "zstd")
    assert detect_format("/a/CC-MAIN-1.warc.wet.gz") == ("warc", "none")
    assert detect_format("/a/b.txt.gz") == ("txt", "gzip")
    with pytest.raises(ValueError, match="unsupported"):
        detect_format("/a/b.csv")


def test_check_inputs_expands_globs_and_rejects_empty_matches(tmp_path, records):
    write_jsonl(tmp_path / "a.jsonl", records[:2])
    write_jsonl(tmp_path / "b.jsonl", records[2:4])
    assert len(check_inputs([str(tmp_path / "*.jsonl")])) == 2
    with pytest.raises(InputError, match="matches no files"):
        check_inputs([str(tmp_path / "*.jsonl"), str(tmp_path / "nothing-*.jsonl.gz")])
    (tmp_path / "c.csv").write_text("text\n", encoding="utf-8")
    with pytest.raises(InputError, match="unsupported"):
        check_inputs([str(tmp_path / "c.csv")])


def test_beam_read_documents_over_mixed_formats_and_write_jsonl(tmp_path, records, caplog):
    write_jsonl(tmp_path / "a.jsonl", records[:10])
    write_jsonl(tmp_path / "b.jsonl.gz", records[10:], gzip.open)
    (tmp_path / "bad.jsonl").write_text('{"text": "정상 문장"}\n{broken\n', encoding="utf-8")
    out_dir = tmp_path / "out"
    patterns = [str(tmp_path / "*.jsonl"), str(tmp_path / "*.jsonl.gz"), str(FIXTURES / "ko_pages.wet.gz")]
    caplog.set_level(logging.WARNING, logger="polyko.io")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        res = p | "Read" >> ReadDocuments(patterns, {"progress_every_s": 0.0})
        ids = res["documents"] | beam.Map(lambda d: d.id)
        assert_that(ids, equal_to([r["id"] for r in records] + ["bad.jsonl:0"] + [f"ko_pages.wet.gz:{i}" for i in range(3)]),
                    label="AllDocs")
        positions = res["errors"] | beam.Map(lambda e: (e["file"].rsplit("/", 1)[-1], e["position"]))
        assert_that(positions, equal_to([("bad.jsonl", 1)]), label="Errors")
        res["documents"] | beam.Map(lambda d: d.to_record()) | WriteJsonl(str(out_dir), "test.written")
    written = read_jsonl_records(str(out_dir))
    assert sorted(r["id"] for r in written) == sorted([r["id"] for r in records] + ["bad.jsonl:0"] +
                                                      [f"ko_pages.wet.gz:{i}" for i in range(3)])
    by_id = {r["id"]: r for r in written}
    assert by_id[records[0]["id"]]["text"] == records[0]["text"]
    assert any("polyko progress" in m for m in caplog.messages)  # progress lines from the reader


@pytest.mark.parametrize("n_files,cfg,spreads", [
    (None, {}, True),                                          # unknown file count: spread
    (3, {"spread_below_files": 16}, True),                     # few files: spread
    (16, {"spread_below_files": 16}, False),                   # enough files to spread the work
    (500, {"spread_below_files": 0}, True),                    # 0: always
    (1, {"reshuffle_documents": False}, False),
])
def test_document_spread_only_when_files_cannot_spread_the_work(tmp_path, records, n_files, cfg, spreads):
    read = ReadDocuments([str(tmp_path / "*.jsonl")], cfg, n_files)
    assert read.spreads_documents() is spreads
    for i in range(4):
        write_jsonl(tmp_path / f"part-{i}.jsonl", records[i * 5:(i + 1) * 5])
    with BeamTestPipeline(runner="FnApiRunner") as p:
        res = p | "Read" >> read
        assert_that(res["documents"] | beam.Map(lambda d: d.id), equal_to([r["id"] for r in records[:20]]))
    spread_steps = [t for t in _all_transforms(p) if t.full_label.endswith("/SpreadDocuments")]
    assert bool(spread_steps) is spreads


def _all_transforms(p):
    stack, out = [p.transforms_stack[0]], []
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.parts)
    return out


def test_json_file_holding_one_array_of_records(tmp_path, records):
    (tmp_path / "arr.json").write_text(json.dumps(records[:3] + [{"id": "no-text"}], ensure_ascii=False, indent=2),
                                       encoding="utf-8")
    docs, errors = read_file_documents(str(tmp_path / "arr.json"))
    assert [d.id for d in docs] == [r["id"] for r in records[:3]]
    assert [(e["position"], "no 'text' field" in e["error"]) for e in errors] == [(3, True)]


@pytest.mark.parametrize("level", [1, 9])
def test_bundle_file_writer_writes_every_record_as_gzip_in_blocks(tmp_path, records, level):
    from apache_beam.metrics.metric import MetricsFilter

    from pipeline.io import _WriteBundleFiles

    # 3 blocks and a partial one per bundle at most: 40 real records x 17 copies = 680 lines
    many = [dict(r, id=f"{r['id']}#{k}") for k in range(17) for r in records]
    p = BeamTestPipeline(runner="FnApiRunner")
    _ = p | beam.Create(many) | WriteJsonl(str(tmp_path / "out"), "test.written", prefix="kept",
                                            bundle_files=True, gzip_level=level)
    result = p.run()
    result.wait_until_finish()
    files = sorted((tmp_path / "out").glob("kept-part-*.jsonl.gz"))
    assert files
    lines = [line for f in files for line in gzip.open(f, "rt", encoding="utf-8").read().split("\n")[:-1]]
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in many)
    assert all(json.loads(line) in many for line in lines[:50])         # whole records, text intact
    counters = result.metrics().query(MetricsFilter().with_name("test.written"))["counters"]
    assert sum(c.committed for c in counters) == len(many)
    with pytest.raises(ValueError, match="gzip_level"):
        _WriteBundleFiles(str(tmp_path), "x", "c", gzip_level=10)

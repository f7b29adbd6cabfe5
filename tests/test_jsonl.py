"""pipeline.jsonl: orjson where it agrees with the standard library, the standard library where not."""
from __future__ import annotations

import gzip
import json
from itertools import islice

import pytest

from pipeline.jsonl import parse_json_line, to_json_bytes, to_json_line


def _plain_dumps(rec) -> str:
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


@pytest.fixture(scope="module")
def real_records(shared_data):
    """Real Korean records, dressed as polyko writes them (metadata, float/int/str signals)."""
    out = []
    for name in ("ko_wiki.jsonl.gz", "ko_comments.jsonl.gz", "ko_nsmc_single.jsonl.gz"):
        with gzip.open(shared_data / name, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(islice(fh, 400)):
                rec = json.loads(line)
                text = rec.get("text") or rec.get("document") or ""
                out.append({"id": f"{name}:{i}", "text": text, "source": name,
                            "metadata": {k: v for k, v in rec.items() if k != "text"},
                            "signals": {"langid.hangul_ratio": round(i / 401, 4), "quality.lines": i,
                                        "langid.method": "script", "quality.ok": i % 2 == 0,
                                        "dedup.none": None, "x": [1.5, 0.0001, 12345678.125, 2 ** 62]}})
    assert len(out) == 1200
    return out


def test_written_lines_equal_the_standard_librarys(real_records):
    for rec in real_records:
        assert to_json_line(rec) == _plain_dumps(rec)
        assert to_json_bytes(rec) == _plain_dumps(rec).encode("utf-8")


def test_parsed_lines_equal_the_standard_librarys(real_records):
    for rec in real_records:
        line = _plain_dumps(rec)
        assert parse_json_line(line.encode("utf-8")) == json.loads(line) == parse_json_line(line)


@pytest.mark.parametrize("rec", [
    {1: "int key"}, {"big": 2 ** 70}, {"lone": "\ud800"}, {"t": (1, 2)}, {"nested": {"k": [None, True]}},
])
def test_writing_what_orjson_refuses_falls_back(rec):
    assert to_json_line(rec) == _plain_dumps(rec)


@pytest.mark.parametrize("line", [
    '{"text": "tab\there, newline\nhere, nul\x00"}',       # raw control characters (strict=False)
    '{"v": NaN, "w": Infinity, "x": -Infinity}',
    '{"s": "\\ud800 lone surrogate"}',
    '{"big": 123456789012345678901234567890}',
    '{"dup": 1, "dup": 2}',
    '"just a string"', "null", "[1, 2]",
])
def test_reading_what_orjson_refuses_gives_the_standard_result(line):
    got, want = parse_json_line(line.encode("utf-8", "surrogatepass")), json.loads(line, strict=False)
    assert json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize("line", ['{"a": 1', '{"a": 1} trailing', "", "{'single': 1}"])
def test_invalid_json_raises_the_standard_error(line):
    with pytest.raises(json.JSONDecodeError) as got:
        parse_json_line(line)
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(line, strict=False)
    assert str(got.value) == str(want.value)


def test_the_documented_differences_small_floats_and_nan():
    small = {"v": [2.5e-05, 1e-07, 5e-324, -3.1e-12]}
    assert to_json_line(small) != _plain_dumps(small)           # spelled differently...
    assert json.loads(to_json_line(small)) == small              # ...the same values
    assert to_json_line({"v": float("nan")}) == '{"v":null}'


def test_whole_floats_beyond_int64_are_read_exactly():
    for line in ['{"m": {"ids": [1, 18446744073709551616]}}', '{"f": 1e20}', '[-9223372036854775809]']:
        assert json.dumps(parse_json_line(line)) == json.dumps(json.loads(line))

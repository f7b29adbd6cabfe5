"""Staging files (pipeline/staging.py): records come back in order, across chunk boundaries."""
from __future__ import annotations

import gzip
import json
import pickle

import pytest

from filters.base import Document
from pipeline.staging import StagingWriter, read_staged


@pytest.fixture(scope="module")
def documents(repo_root) -> list[Document]:
    """Real Korean documents from the bundled sample, with signals as the quality stage writes them."""
    path = sorted((repo_root / "data" / "sample").glob("*.jsonl.gz"))[0]
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == 600:
                break
            doc = Document.from_record(json.loads(line))
            doc.signals = {"quality.chars": len(doc.text), "quality.hangul_letter_ratio": 0.5 + i / 2000,
                           "langid.method": "script"}
            docs.append(doc)
    return docs


@pytest.mark.parametrize("n", [1, StagingWriter.CHUNK - 1, StagingWriter.CHUNK, StagingWriter.CHUNK + 1, 600])
def test_records_come_back_in_order_across_chunks(documents, tmp_path, n):
    writer = StagingWriter(str(tmp_path), "-x")
    for doc in documents[:n]:
        writer.write(doc)
    path = writer.close()
    assert path is not None and path.endswith("-x.pkl")
    back = list(read_staged(path))
    assert back == documents[:n]
    assert writer.records == n
    # one length-prefixed pickle per chunk
    chunks, offset, data = 0, 0, open(path, "rb").read()
    while offset < len(data):
        size = int.from_bytes(data[offset:offset + 8], "little")
        assert len(pickle.loads(data[offset + 8:offset + 8 + size])) <= StagingWriter.CHUNK
        offset += 8 + size
        chunks += 1
    assert chunks == -(-n // StagingWriter.CHUNK)


def test_an_empty_writer_creates_no_file(tmp_path):
    writer = StagingWriter(str(tmp_path))
    assert writer.close() is None
    assert not any(tmp_path.iterdir())


def test_a_truncated_file_is_an_error(documents, tmp_path):
    writer = StagingWriter(str(tmp_path))
    for doc in documents[:10]:
        writer.write(doc)
    path = writer.close()
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[:-5])
    with pytest.raises(IOError, match="truncated"):
        list(read_staged(path))

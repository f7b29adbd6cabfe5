"""Readers and writers: every input format in, gzip JSONL / Parquet out, all via Beam filesystems.

The per-file readers (``iter_file_items``) are plain generators over a binary stream, testable
without a runner; ``ReadDocuments`` wraps them as a Beam composite that expands globs at run time
(``fileio.MatchAll``), so a Dataflow job carries the patterns, not a list of a million files.

A reader never raises on bad data: a record it cannot turn into a Document becomes an error
record ``{"file", "position", "error", "snippet"}`` on the ``errors`` output, and reading goes on
with the next record, so a run loses nothing and the accounting still balances.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import io
import json
import logging
import os
import re
import time
import uuid
import zlib
from typing import Any, BinaryIO, Iterator, Mapping, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from filters.base import Document
from pipeline.jsonl import UNDECIDED, fast_parse, to_json_bytes, to_json_line
from pipeline.stages import BundleCounters, text_bytes

LOG = logging.getLogger("polyko.io")
NAMESPACE = "polyko"
SNIPPET_CHARS = 300

# ---------------------------------------------------------------------------------------------
# formats


def detect_format(path: str) -> tuple[str, str]:
    """Return ``(format, compression)`` from the file name.

    format: ``jsonl`` | ``parquet`` | ``txt`` | ``warc``; compression: ``none`` | ``gzip`` | ``zstd``
    (WARC handles its own per-record gzip).
    """
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith((".warc", ".warc.gz", ".wet.gz", ".wet", ".arc.gz")):
        return "warc", "none"
    compression = "none"
    if name.endswith(".gz"):
        compression, name = "gzip", name[:-3]
    elif name.endswith(".zst"):
        compression, name = "zstd", name[:-4]
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl", compression
    if name.endswith(".parquet") and compression == "none":
        return "parquet", compression
    if name.endswith(".txt") and compression != "zstd":
        return "txt", compression
    raise ValueError(f"unsupported input file type: {path} (expected .jsonl/.json[.gz|.zst], "
                     ".parquet, .txt[.gz], .warc[.gz], .wet.gz)")


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def snippet_of(raw: bytes | str, limit: int = SNIPPET_CHARS) -> str:
    if isinstance(raw, bytes):
        raw = raw[: limit * 4].decode("utf-8", errors="backslashreplace")
    return raw[:limit]


def error_record(path: str, position: Optional[int], error: str, raw: bytes | str = b"") -> dict:
    return {"file": path, "position": position, "error": error, "snippet": snippet_of(raw)}


# Items yielded by the per-file readers (plain tuples keep them cheap and picklable):
#   ("doc", Document) | ("error", kind, error_record) | ("count", name, n)


def _jsonable(value: Any) -> Any:
    """Make Parquet/JSON values JSON-serialisable for metadata (dates, bytes, numpy scalars)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


class RecordError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def record_to_document(rec: Any, path: str, position: int, cfg: Mapping[str, Any]) -> Document:
    """Turn one input record (a dict) into a Document, or raise RecordError with a clear reason."""
    text_field = cfg.get("text_field", "text")
    id_field = cfg.get("id_field", "id")
    source_field = cfg.get("source_field", "source")
    if not isinstance(rec, dict):
        raise RecordError("not_object", f"record is a JSON {type(rec).__name__}, not an object")
    if text_field not in rec:
        raise RecordError("missing_text", f"record has no {text_field!r} field")
    text = rec[text_field]
    if not isinstance(text, str):
        raise RecordError("bad_text", f"field {text_field!r} is {type(text).__name__}, not a string")
    rid = rec.get(id_field)
    doc_id = f"{basename(path)}:{position}" if rid is None or rid == "" else str(rid)
    src = rec.get(source_field)
    source = str(src) if src not in (None, "") else basename(path)
    metadata: dict[str, Any] = {}
    nested = rec.get("metadata")
    if isinstance(nested, dict):  # re-reading polyko output: keep its metadata flat
        metadata.update(_jsonable(nested))
    for k, v in rec.items():
        if k in (text_field, id_field, source_field) or (k == "metadata" and isinstance(v, dict)):
            continue
        metadata[k] = _jsonable(v)
    return Document(id=doc_id, text=text, source=source, metadata=metadata)


def _open_decompressed(raw: BinaryIO, compression: str) -> BinaryIO:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "zstd":
        return _ZstdLines(raw)
    return raw


class _ZstdLines:
    """Line iterator over a (multi-frame) zstd stream that raises EOFError on a truncated frame.

    zstandard's ``stream_reader`` silently returns short data for a truncated file; driving a
    ``decompressobj`` ourselves lets us check that the last frame really ended.
    """

    CHUNK = 1 << 20

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def __iter__(self) -> Iterator[bytes]:
        import zstandard

        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        pending = b""
        in_frame = False
        while True:
            chunk = self.raw.read(self.CHUNK)
            if not chunk:
                break
            while chunk:
                if dobj.eof:  # previous frame finished: the rest starts a new one
                    dobj = dctx.decompressobj()
                out = dobj.decompress(chunk)
                in_frame = not dobj.eof
                chunk = dobj.unused_data if dobj.eof else b""
                if out:
                    pending += out
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line + b"\n"
        if in_frame:  # the partial last line is not a record: the error reports where it stopped
            raise EOFError("zstd stream ended in the middle of a frame")
        if pending:
            yield pending


def _stream_error_kind(exc: BaseException) -> str:
    return "truncated" if isinstance(exc, EOFError) else "corrupt_stream"


_STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, gzip.BadGzipFile)
try:  # zstd decoding errors
    import zstandard as _zstd

    _STREAM_ERRORS = _STREAM_ERRORS + (_zstd.ZstdError,)
except ImportError:  # pragma: no cover - zstandard is a dependency
    pass


def _iter_json_array(first: bytes, it: Iterator[bytes], path: str, cfg: Mapping[str, Any]) -> Iterator[tuple]:
    """A ``.json`` file holding one JSON array of records (position = index in the array)."""
    max_bytes = int(cfg.get("max_document_bytes", 50 * 2**20))
    chunks, size = [first], len(first)
    for line in it:
        chunks.append(line)
        size += len(line)
        if size > 4 * max_bytes:  # an array is parsed whole: bound the memory it can take
            yield ("error", "too_large", error_record(path, 0, "JSON array file over 4 x input.max_document_bytes"))
            return
    raw = b"".join(chunks)
    try:
        records = json.loads(raw.decode("utf-8"), strict=False)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        yield ("error", "json", error_record(path, 0, f"malformed JSON array file: {exc}", raw))
        return
    for position, rec in enumerate(records):
        try:
            yield ("doc", record_to_document(rec, path, position, cfg))
        except RecordError as exc:
            yield ("error", exc.kind, error_record(path, position, str(exc), json.dumps(rec, ensure_ascii=False)))
    if not records:
        yield ("error", "empty_file", error_record(path, 0, "empty input file: JSON array with no records"))


def iter_jsonl(stream: BinaryIO, path: str, cfg: Mapping[str, Any]) -> Iterator[tuple]:
    max_bytes = int(cfg.get("max_document_bytes", 50 * 2**20))
    position = -1
    saw_any = False
    it = iter(stream)
    is_json = basename(path).lower().split(".json")[-1] in ("", ".gz", ".zst")  # x.json, x.json.gz
    while True:
        try:
            line = next(it)
        except StopIteration:
            break
        except _STREAM_ERRORS as exc:
            yield ("error", _stream_error_kind(exc),
                   error_record(path, position + 1, f"{_stream_error_kind(exc)} input after {position + 1} "
                                f"lines: {type(exc).__name__}: {exc}"))
            return
        position += 1
        saw_any = True
        if position == 0 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # UTF-8 BOM
        if position == 0 and is_json and line.lstrip().startswith(b"["):
            yield from _iter_json_array(line, it, path, cfg)
            return
        if not line.strip():
            yield ("count", "blank_lines", 1)
            continue
        if len(line) > max_bytes:
            yield ("error", "too_large", error_record(
                path, position, f"record is {len(line)} bytes, over input.max_document_bytes={max_bytes}", line))
            continue
        rec = fast_parse(line)  # valid UTF-8 and strict JSON: most lines (pipeline/jsonl.py)
        if rec is UNDECIDED:  # the standard path decides, and names invalid UTF-8 itself
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield ("error", "invalid_utf8", error_record(path, position, f"invalid UTF-8: {exc}", line))
                continue
            try:
                # strict=False: raw tabs/newlines/NULs inside strings are accepted (normalisation
                # removes the control characters); malformed JSON still fails.
                rec = json.loads(decoded, strict=False)
            except json.JSONDecodeError as exc:
                yield ("error", "json", error_record(path, position, f"malformed JSON: {exc}", decoded))
                continue
        try:
            yield ("doc", record_to_document(rec, path, position, cfg))
        except RecordError as exc:
            yield ("error", exc.kind, error_record(path, position, str(exc), line.decode("utf-8")))
    if not saw_any:
        yield ("error", "empty_file", error_record(path, 0, "empty input file: no records"))


def iter_parquet(stream: BinaryIO, path: str, cfg: Mapping[str, Any]) -> Iterator[tuple]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises ArrowInvalid & co for broken files
        yield ("error", "corrupt_stream", error_record(path, 0, f"unreadable Parquet file: {exc}"))
        return
    position = 0
    max_bytes = int(cfg.get("max_document_bytes", 50 * 2**20))
    text_field = cfg.get("text_field", "text")
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                try:
                    text = row.get(text_field) if isinstance(row, dict) else None
                    if isinstance(text, str) and len(text.encode("utf-8")) > max_bytes:
                        raise RecordError("too_large", f"text over input.max_document_bytes={max_bytes}")
                    yield ("doc", record_to_document(row, path, position, cfg))
                except RecordError as exc:
                    yield ("error", exc.kind, error_record(path, position, str(exc),
                                                           json.dumps(_jsonable(row), ensure_ascii=False)))
                position += 1
    except Exception as exc:
        yield ("error", "corrupt_stream", error_record(
            path, position, f"Parquet read failed after {position} rows: {type(exc).__name__}: {exc}"))
        return
    if position == 0:
        yield ("error", "empty_file", error_record(path, 0, "empty input file: no rows"))


def decode_bytes(data: bytes, declared: Optional[str] = None) -> tuple[str, str]:
    """Decode bytes using a declared charset if it works, else UTF-8, else charset-normalizer.

    EUC-KR is decoded as CP949 (its superset, which is what browsers do): pages labelled EUC-KR
    routinely contain CP949-only syllables such as "똠" or "햏".
    """
    candidates: list[str] = []
    if declared:
        enc = declared.strip().strip("'\"").lower()
        if enc in ("euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ksc5601", "korean", "x-windows-949"):
            enc = "cp949"
        candidates.append(enc)
    candidates.append("utf-8")
    for enc in candidates:
        try:
            return data.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None:
        enc = best.encoding.lower()
        if enc in ("euc_kr", "euc-kr"):
            enc = "cp949"
        try:
            return data.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            return str(best), best.encoding
    raise UnicodeDecodeError("unknown", data[:1], 0, 1, "no charset decodes this document")


def iter_txt(stream: BinaryIO, path: str, cfg: Mapping[str, Any]) -> Iterator[tuple]:
    max_bytes = int(cfg.get("max_document_bytes", 50 * 2**20))
    try:
        data = stream.read(max_bytes + 1)
    except _STREAM_ERRORS as exc:
        yield ("error", _stream_error_kind(exc), error_record(
            path, 0, f"{_stream_error_kind(exc)} input: {type(exc).__name__}: {exc}"))
        return
    if len(data) > max_bytes:
        yield ("error", "too_large", error_record(path, 0, f"file over input.max_document_bytes={max_bytes}", data))
        return
    if not data:
        yield ("error", "empty_file", error_record(path, 0, "empty input file"))
        return
    try:
        text, enc = decode_bytes(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    except UnicodeDecodeError as exc:
        yield ("error", "invalid_utf8", error_record(path, 0, f"cannot decode text: {exc}", data))
        return
    meta = {} if enc == "utf-8" else {"charset": enc}
    yield ("doc", Document(id=f"{basename(path)}:0", text=text, source=basename(path), metadata=meta))


_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def html_charset(http_content_type: Optional[str], body: bytes) -> Optional[str]:
    """Charset from the HTTP Content-Type header, else from a <meta> tag in the first 4 KB."""
    if http_content_type:
        m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", http_content_type, re.IGNORECASE)
        if m:
            return m.group(1)
    m = _META_CHARSET_RE.search(body[:4096])
    return m.group(1).decode("ascii") if m else None


def extract_html_text(html_text: str) -> str:
    """Main text of an HTML page (trafilatura, no comments/tables of links); '' when none."""
    import trafilatura

    text = trafilatura.extract(html_text, include_comments=False, include_tables=True,
                               favor_precision=False, deduplicate=False, with_metadata=False)
    return text or ""


def iter_warc(stream: BinaryIO, path: str, cfg: Mapping[str, Any]) -> Iterator[tuple]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    max_bytes = int(cfg.get("max_document_bytes", 50 * 2**20))
    position = -1
    name = basename(path)
    try:
        for record in ArchiveIterator(stream):
            position += 1
            rtype = record.rec_type
            headers = record.rec_headers
            meta = {"url": headers.get_header("WARC-Target-URI"),
                    "warc_date": headers.get_header("WARC-Date"),
                    "warc_record_id": headers.get_header("WARC-Record-ID")}
            if rtype == "response":
                ctype = record.http_headers.get_header("Content-Type") if record.http_headers else None
                if not ctype or not ctype.split(";")[0].strip().lower() in _HTML_TYPES:
                    yield ("count", "warc_skipped_non_html", 1)
                    continue
                body = record.content_stream().read(max_bytes + 1)
                if len(body) > max_bytes:
                    yield ("error", "too_large", error_record(
                        path, position, f"response over input.max_document_bytes={max_bytes}", body))
                    continue
                try:
                    html_text, enc = decode_bytes(body, html_charset(ctype, body))
                except UnicodeDecodeError as exc:
                    yield ("error", "invalid_utf8", error_record(path, position, f"cannot decode page: {exc}", body))
                    continue
                try:
                    text = extract_html_text(html_text)
                except Exception as exc:  # trafilatura/lxml on pathological markup
                    yield ("error", "html_extract", error_record(
                        path, position, f"HTML extraction failed: {type(exc).__name__}: {exc}", html_text))
                    continue
                meta["charset"] = enc
                yield ("doc", Document(id=f"{name}:{position}", text=text, source=name, metadata=meta))
            elif rtype == "conversion":  # WET: already plain text, UTF-8 by the WET spec
                body = record.content_stream().read(max_bytes + 1)
                if len(body) > max_bytes:
                    yield ("error", "too_large", error_record(
                        path, position, f"record over input.max_document_bytes={max_bytes}", body))
                    continue
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield ("error", "invalid_utf8", error_record(path, position, f"invalid UTF-8: {exc}", body))
                    continue
                yield ("doc", Document(id=f"{name}:{position}", text=text, source=name, metadata=meta))
            else:  # warcinfo, request, metadata, revisit: not documents
                yield ("count", f"warc_skipped_{rtype}", 1)
    except (ArchiveLoadFailed, *_STREAM_ERRORS) as exc:
        yield ("error", "truncated" if isinstance(exc, EOFError) else "corrupt_stream", error_record(
            path, position + 1, f"WARC read failed after {position + 1} records: {type(exc).__name__}: {exc}"))
        return
    if position < 0:
        yield ("error", "empty_file", error_record(path, 0, "empty WARC file: no records"))


def iter_file_items(path: str, cfg: Mapping[str, Any], stream: Optional[BinaryIO] = None) -> Iterator[tuple]:
    """All items of one input file. Opens ``path`` through Beam filesystems unless ``stream``
    (raw, still compressed bytes) is given."""
    fmt, compression = detect_format(path)
    own = stream is None
    if own:
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as exc:
            yield ("error", "unreadable", error_record(path, None, f"cannot open: {type(exc).__name__}: {exc}"))
            return
    try:
        if fmt == "parquet":
            yield from iter_parquet(stream, path, cfg)
            return
        if fmt == "warc":
            yield from iter_warc(stream, path, cfg)
            return
        try:
            inner = _open_decompressed(stream, compression)
        except _STREAM_ERRORS as exc:
            yield ("error", "corrupt_stream", error_record(path, 0, f"cannot decompress: {exc}"))
            return
        if fmt == "txt":
            yield from iter_txt(inner, path, cfg)
        else:
            yield from iter_jsonl(inner, path, cfg)
    finally:
        if own:
            stream.close()


def read_file_documents(path: str, cfg: Mapping[str, Any] | None = None) -> tuple[list[Document], list[dict]]:
    """Convenience for tests and tools: (documents, error records) of one file, no runner."""
    docs, errors = [], []
    for item in iter_file_items(path, cfg or {}):
        if item[0] == "doc":
            docs.append(item[1])
        elif item[0] == "error":
            errors.append(item[2])
    return docs, errors


# ---------------------------------------------------------------------------------------------
# up-front input check (driver side, before the pipeline starts)


class InputError(ValueError):
    pass


def check_inputs(patterns: list[str]) -> list[str]:
    """Expand every pattern once before starting; fail with a clear message if one matches
    nothing or names an unsupported type. Returns the matched paths (for stats only: the
    pipeline itself re-expands the patterns at run time)."""
    if not patterns:
        raise InputError("no input files given")
    matched: list[str] = []
    for pattern in patterns:
        try:
            result = FileSystems.match([pattern])[0]
        except Exception as exc:
            raise InputError(f"input {pattern!r}: cannot list: {exc}") from None
        paths = [m.path for m in result.metadata_list]
        if not paths:
            raise InputError(f"input {pattern!r} matches no files")
        for p in paths:
            try:
                detect_format(p)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        matched.extend(paths)
    return matched


# ---------------------------------------------------------------------------------------------
# Beam transforms

ERRORS_TAG = "errors"


class _ReadFileFn(beam.DoFn):
    """Reads one matched file; documents on the main output, bad records on ``errors``.

    Logs progress every ``progress_every_s`` seconds so a long local run shows it is alive
    (documents read by this worker and elapsed time).
    """

    def __init__(self, cfg: Mapping[str, Any], progress_every_s: float = 15.0) -> None:
        self.cfg = dict(cfg)
        self.progress_every_s = progress_every_s

    def setup(self) -> None:
        self._counters = BundleCounters()
        self._start = time.monotonic()
        self._last_log = self._start
        self._docs_seen = 0

    def start_bundle(self) -> None:
        self._counters.start()

    def finish_bundle(self) -> None:
        self._counters.flush()

    def process(self, metadata):
        path = metadata.path
        counters = self._counters
        counters.inc("read.files")
        for item in iter_file_items(path, self.cfg):
            kind = item[0]
            if kind == "doc":
                doc = item[1]
                counters.inc("read.records")
                counters.inc("read.documents")
                n = text_bytes(doc.text)
                counters.inc("read.bytes_out", n)
                counters.inc(f"read.source.{doc.source}.documents")
                counters.inc(f"read.source.{doc.source}.bytes", n)
                self._docs_seen += 1
                now = time.monotonic()
                if now - self._last_log >= self.progress_every_s:
                    self._last_log = now
                    LOG.warning("polyko progress (worker pid %d): %d documents read, %.0f s elapsed",
                                os.getpid(), self._docs_seen, now - self._start)
                yield doc
            elif kind == "error":
                counters.inc("read.records")
                counters.inc("read.errors")
                counters.inc(f"read.error.{item[1]}")
                counters.inc(f"read.error_file.{basename(path)}")
                yield beam.pvalue.TaggedOutput(ERRORS_TAG, item[2])
            else:
                counters.inc(f"read.count.{item[1]}", item[2])


class ReadDocuments(beam.PTransform):
    """``PBegin -> {"documents": PCollection[Document], "errors": PCollection[dict]}``.

    Patterns are expanded at run time (``MatchAll``); matched files are reshuffled so different
    workers read different files, and documents are reshuffled again (``reshuffle_documents``) so
    one huge file does not pin all later stages to the worker that read it.  That second shuffle
    moves every document through the runner, so it is skipped when the caller knows the inputs
    match at least ``spread_below_files`` files (``n_files``, counted before the run): spreading
    files is then enough.
    """

    def __init__(self, patterns: list[str], input_cfg: Mapping[str, Any], n_files: Optional[int] = None) -> None:
        super().__init__()
        self.patterns = list(patterns)
        self.cfg = dict(input_cfg)
        self.n_files = n_files

    def spreads_documents(self) -> bool:
        if not self.cfg.get("reshuffle_documents", True):
            return False
        below = int(self.cfg.get("spread_below_files", 0))
        return not (below > 0 and self.n_files is not None and self.n_files >= below)

    def expand(self, pbegin):
        files = (pbegin
                 | "Patterns" >> beam.Create(self.patterns)
                 | "MatchFiles" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
                 | "SpreadFiles" >> beam.Reshuffle())
        read_fn = _ReadFileFn(self.cfg, progress_every_s=float(self.cfg.get("progress_every_s", 15.0)))
        out = files | "ReadFiles" >> beam.ParDo(read_fn).with_outputs(ERRORS_TAG, main="documents")
        docs = out.documents
        if self.spreads_documents():
            # Spread in batches: the runner moves one element per batch instead of one per
            # document (fewer per-element encode/route/decode steps on both sides of the shuffle).
            docs = (docs
                    | "BatchForSpread" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
                    | "SpreadDocuments" >> beam.Reshuffle()
                    | "Unbatch" >> beam.FlatMap(lambda batch: batch))
        return {"documents": docs, "errors": out[ERRORS_TAG]}


class _CountingWrite(beam.PTransform):
    """Records (dicts) -> files under ``directory``, counting each written record in ``counter``
    (the accounting cross-check reads it). Subclasses convert a record and name the sink."""

    convert_label = "Convert"

    def __init__(self, directory: str, counter: str, num_shards: int = 0, prefix: str = "part",
                 bundle_files: bool = False, gzip_level: int = 6) -> None:
        super().__init__()
        self.directory = directory
        self.counter = counter
        self.num_shards = num_shards
        self.gzip_level = gzip_level
        self.prefix = prefix if prefix == "part" else f"{prefix}-part"
        # One file per bundle, written in place: no initialise/finalise steps.  Only where a
        # failed bundle fails the whole run (the local runner: nothing is retried, and the run's
        # temp folder is dropped), since a retried bundle would write its records twice.
        self.bundle_files = bundle_files and num_shards == 0

    @staticmethod
    def convert(rec: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def sink(self, prefix: str) -> beam.PTransform:  # pragma: no cover - abstract
        raise NotImplementedError

    def expand(self, pcoll):
        counter = Metrics.counter(NAMESPACE, self.counter)
        convert = self.convert

        def count_and_convert(rec):
            counter.inc()
            return convert(rec)

        if self.bundle_files:
            return pcoll | "Write" >> beam.ParDo(_WriteBundleFiles(self.directory, self.prefix, self.counter,
                                                                   self.gzip_level))
        return (pcoll
                | self.convert_label >> beam.Map(count_and_convert)
                | "Write" >> self.sink(FileSystems.join(self.directory, self.prefix)))


class _WriteBundleFiles(beam.DoFn):
    """Records → ``<dir>/<prefix>-<uuid>.jsonl.gz``, one file per bundle (see ``bundle_files``).

    Lines are compressed in blocks of ``BLOCK`` records by one zlib stream in gzip framing, at
    ``gzip_level`` (``output.gzip_level``; 1 compresses Korean JSON lines ~3x faster than the
    default 6, for ~18 % more bytes: docs/output-format.md), instead of one call into Beam's
    ``CompressedFile`` per record.
    """

    BLOCK = 256

    def __init__(self, directory: str, prefix: str, counter: str, gzip_level: int = 6) -> None:
        if not 0 <= gzip_level <= 9:
            raise ValueError(f"output.gzip_level must be 0-9, got {gzip_level}")
        self.directory = directory
        self.prefix = prefix
        self.counter_name = counter
        self.gzip_level = gzip_level

    def setup(self) -> None:
        self.counter = Metrics.counter(NAMESPACE, self.counter_name)

    def start_bundle(self) -> None:
        self._fh = None
        self._zip = None
        self._lines: list[bytes] = []

    def process(self, rec):
        self._lines.append(to_json_bytes(rec))
        if len(self._lines) >= self.BLOCK:
            self._write_block()
        return ()

    def _write_block(self) -> None:
        if not self._lines:
            return
        if self._fh is None:
            path = FileSystems.join(self.directory, f"{self.prefix}-{uuid.uuid4().hex}.jsonl.gz")
            self._fh = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
            self._zip = zlib.compressobj(self.gzip_level, zlib.DEFLATED, 31)  # wbits 31: gzip header + trailer
        self._lines.append(b"")  # a newline after the last line too
        self._fh.write(self._zip.compress(b"\n".join(self._lines)))
        self.counter.inc(len(self._lines) - 1)
        self._lines = []

    def finish_bundle(self) -> None:
        self._write_block()
        if self._fh is not None:
            self._fh.write(self._zip.flush())
            self._fh.close()
            self._fh = self._zip = None


class WriteJsonl(_CountingWrite):
    """Records (dicts) -> ``<dir>/[<prefix>-]part-SSSSS-of-NNNNN.jsonl.gz``."""

    convert_label = "Encode"
    convert = staticmethod(to_json_line)

    def sink(self, prefix: str) -> beam.PTransform:
        return beam.io.WriteToText(prefix, file_name_suffix=".jsonl.gz", num_shards=self.num_shards,
                                   compression_type=CompressionTypes.GZIP)


def parquet_schema():
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                      ("metadata", pa.string()), ("signals", pa.string())])


class WriteKeptParquet(_CountingWrite):
    """Kept records -> Parquet with metadata/signals as JSON strings (their keys vary per input)."""

    convert_label = "ToRow"

    @staticmethod
    def convert(rec: Mapping[str, Any]) -> dict:
        return {"id": rec["id"], "text": rec["text"], "source": rec["source"],
                "metadata": to_json_line(rec.get("metadata") or {}),
                "signals": to_json_line(rec.get("signals") or {})}

    def sink(self, prefix: str) -> beam.PTransform:
        return beam.io.WriteToParquet(prefix, parquet_schema(), file_name_suffix=".parquet",
                                      num_shards=self.num_shards)


def read_jsonl_records(directory: str) -> list[dict]:
    """All records under ``directory/*.jsonl.gz`` (tests and small tools; not for big runs)."""
    out: list[dict] = []
    for m in FileSystems.match([FileSystems.join(directory, "*.jsonl.gz")])[0].metadata_list:
        with FileSystems.open(m.path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            for line in gzip.GzipFile(fileobj=raw, mode="rb"):
                if line.strip():
                    out.append(json.loads(line))
    return out

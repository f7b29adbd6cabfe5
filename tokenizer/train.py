"""Byte-level BPE training following Polyglot-Ko, on a bounded, source-balanced sample.

* Model: byte-level BPE (HF ``tokenizers``), no normaliser (the pipeline already NFC-normalises,
  and the tokenizer must round-trip text exactly), ``ByteLevel`` pre-tokeniser and decoder.
  ``vocab_size`` learned entries (256 byte symbols + merges) plus the special tokens below;
  Polyglot-Ko used 30,000 learned entries plus a handful of special tokens.
* Special tokens: ``<|endoftext|>`` (end of document, appended by the tokenize stage),
  ``<|pad|>``, and the PII replacement tokens, each a single id, so a masked ``<|tel|>`` is one
  token instead of five pieces of punctuation.
* Morpheme-aware ("MBBPE", Polyglot-Ko): training text is segmented with MeCab-ko and a marker
  character is inserted between morphemes that touch; the *training* pre-tokeniser splits on the
  marker and removes it, so no merge ever spans a morpheme boundary. The *saved* tokenizer has
  the plain ``ByteLevel`` pre-tokeniser: at encode time there is no marker to remove (the text
  never went through MeCab), the learned merges simply apply within each word, and a marker
  character that happens to be in real input is an ordinary character that round-trips.
  So ``decode(encode(x)) == x`` holds for every input and encoding needs no MeCab.
* Sample: :func:`sample_texts` keeps a uniform random sample of each source under a byte budget
  shared fairly between sources ("water-filling": small sources keep everything, the rest split
  the remaining budget evenly), in one pass with memory bounded by the budget whatever the
  corpus size. The random key of a document is a hash of its id, so samples are reproducible.
"""
from __future__ import annotations

import gzip
import hashlib
import heapq
import io
import json
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

# The PII stage's replacement tokens (filters.pii.REPLACEMENT_TOKENS values), repeated here
# rather than imported: importing filters.pii loads presidio (seconds) into every tokenizer user.
# tests/test_tokenizer.py checks the two lists agree.
PII_TOKENS: list[str] = ["<|tel|>", "<|rrn|>", "<|email|>", "<|acc|>", "<|crd|>"]

EOD_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS: list[str] = [EOD_TOKEN, PAD_TOKEN] + [t for t in PII_TOKENS if t not in (EOD_TOKEN, PAD_TOKEN)]

# Private-use character: never produced by MeCab, vanishingly rare in web text, one code point.
MORPHEME_MARKER = "\ue000"

DEFAULT_VOCAB_SIZE = 30_000          # learned entries, Polyglot-Ko
DEFAULT_SAMPLE_BYTES = 200_000_000   # training text budget (UTF-8 bytes)


# ---------------------------------------------------------------------------------------------
# reading kept documents
# ---------------------------------------------------------------------------------------------
def iter_input_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files under the given paths (directories searched recursively), sorted for determinism.
    A pipeline output directory's ``kept/`` folder is used when present."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            root = p / "kept" if (p / "kept").is_dir() else p
            out.extend(f for f in root.rglob("*")
                       if f.is_file() and f.name.endswith((".jsonl.gz", ".jsonl", ".json.gz", ".parquet")))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(p)
    return sorted(set(out))


def iter_records(files: Iterable[Path]) -> Iterator[dict]:
    """Yield ``{"id","text","source"}`` dicts from gzip/plain JSONL or Parquet files."""
    for f in files:
        if f.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(f)
            cols = [c for c in ("id", "text", "source") if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(columns=cols, batch_size=1024):
                for i, rec in enumerate(batch.to_pylist()):
                    rec.setdefault("source", f.name)
                    rec.setdefault("id", f"{f.name}:{i}")
                    yield rec
            continue
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rt", encoding="utf-8") as fh:
            for pos, line in enumerate(fh):
                if not line.strip():
                    continue
                rec = json.loads(line)
                text = rec.get("text")
                if not isinstance(text, str) or not text:
                    continue
                yield {"id": str(rec.get("id", f"{f.name}:{pos}")), "text": text,
                       "source": str(rec.get("source") or f.name)}


def id_fraction(doc_id: str, salt: str = "") -> float:
    """A stable number in [0, 1) from a document id (for sampling keys and hold-out splits)."""
    h = hashlib.blake2b((salt + doc_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


# ---------------------------------------------------------------------------------------------
# source-balanced reservoir under a byte budget
# ---------------------------------------------------------------------------------------------
@dataclass
class _SourceReservoir:
    seen_bytes: int = 0
    seen_docs: int = 0
    kept_bytes: int = 0
    heap: list = field(default_factory=list)   # max-heap on key: entries (-key, id, text, nbytes)
    # smallest key ever trimmed: a later document with a larger key can never be in the final
    # sample (the budget only shrinks), and admitting it would leave a hole in the key order
    cutoff: float = float("inf")

    def add(self, key: float, doc_id: str, text: str, nbytes: int) -> None:
        self.seen_bytes += nbytes
        self.seen_docs += 1
        if key >= self.cutoff:
            return
        heapq.heappush(self.heap, (-key, doc_id, text, nbytes))
        self.kept_bytes += nbytes

    def trim(self, budget: float) -> None:
        # keep the smallest-key prefix that fits: a uniform sample of this source by bytes
        while self.kept_bytes > budget and self.heap:
            neg_key, _, _, nb = heapq.heappop(self.heap)
            self.kept_bytes -= nb
            self.cutoff = min(self.cutoff, -neg_key)


def _water_level(sizes: list[int], budget: int) -> float:
    """The level L with sum(min(size, L)) == budget (inf when everything fits)."""
    if sum(sizes) <= budget:
        return float("inf")
    remaining, n = budget, len(sizes)
    for i, s in enumerate(sorted(sizes)):
        share = remaining / (n - i)
        if s >= share:
            return share
        remaining -= s
    return float("inf")  # pragma: no cover - unreachable


@dataclass
class SampleStats:
    docs_seen: int = 0
    bytes_seen: int = 0
    docs_sampled: int = 0
    bytes_sampled: int = 0
    docs_held_out: int = 0
    per_source: dict = field(default_factory=dict)


def sample_texts(records: Iterable[dict], sample_bytes: int, *, seed: str = "polyko",
                 holdout_fraction: float = 0.0, trim_every: int = 512) -> tuple[list[str], SampleStats]:
    """One pass over ``records``; returns (texts, stats). Memory: about ``sample_bytes`` of text
    plus ``trim_every`` documents, whatever the input size.

    Documents whose id falls in the first ``holdout_fraction`` of the id-hash space are skipped
    (used to keep evaluation text out of training). Order of the returned texts: by source, then
    by sampling key (deterministic).
    """
    reservoirs: dict[str, _SourceReservoir] = {}
    stats = SampleStats()
    since_trim = 0

    def trim_all() -> None:
        level = _water_level([r.seen_bytes for r in reservoirs.values()], sample_bytes)
        for r in reservoirs.values():
            r.trim(level)

    for rec in records:
        doc_id = rec["id"]
        if holdout_fraction and id_fraction(doc_id, "holdout") < holdout_fraction:
            stats.docs_held_out += 1
            continue
        text = rec["text"]
        nbytes = len(text.encode("utf-8"))
        stats.docs_seen += 1
        stats.bytes_seen += nbytes
        res = reservoirs.setdefault(rec["source"], _SourceReservoir())
        res.add(id_fraction(doc_id, seed), doc_id, text, nbytes)
        since_trim += 1
        if since_trim >= trim_every:
            trim_all()
            since_trim = 0
    trim_all()
    texts: list[str] = []
    for source in sorted(reservoirs):
        r = reservoirs[source]
        entries = sorted(r.heap, key=lambda e: (-e[0], e[1]))
        texts.extend(e[2] for e in entries)
        stats.per_source[source] = {"docs_seen": r.seen_docs, "bytes_seen": r.seen_bytes,
                                    "docs_sampled": len(entries), "bytes_sampled": r.kept_bytes}
        stats.docs_sampled += len(entries)
        stats.bytes_sampled += r.kept_bytes
    return texts, stats


# ---------------------------------------------------------------------------------------------
# morpheme segmentation (training only)
# ---------------------------------------------------------------------------------------------
class MorphemeMarker:
    """Inserts :data:`MORPHEME_MARKER` between touching MeCab-ko morphemes.

    Whitespace boundaries need no marker (the byte-level pre-tokeniser splits there already).
    If MeCab's spans do not tile the text (it should not happen, but MeCab normalises some
    inputs), the text is returned unmarked rather than altered.
    """

    def __init__(self) -> None:
        import mecab  # python-mecab-ko; bundles its dictionary, no download

        self._mecab = mecab.MeCab()
        try:  # spans straight from the lattice: ~2.5x faster than MeCab.parse, which builds
            from mecab.utils import create_lattice  # a feature object per morpheme we never use

            self._tagger, self._create_lattice = self._mecab._tagger, create_lattice
        except (ImportError, AttributeError):  # pragma: no cover - other python-mecab-ko versions
            self._tagger = None

    def spans(self, line: str) -> list[tuple[int, int, str]]:
        """(start, end, surface) per morpheme, character offsets into ``line``."""
        # python-mecab-ko counts offsets from the first non-space character
        lead = len(line) - len(line.lstrip())
        if self._tagger is not None:
            lattice = self._create_lattice(line)
            if not self._tagger.parse(lattice):
                raise RuntimeError(self._tagger.what())
            return [(s + lead, e + lead, node.surface) for (s, e), node in lattice]
        return [(m.span.start + lead, m.span.end + lead, m.surface) for m in self._mecab.parse(line)]

    def __call__(self, text: str) -> str:
        # MeCab works line by line; NULs end a C string, so such lines stay unmarked
        return "\n".join(self._mark_line(line) for line in text.split("\n"))

    def _mark_line(self, line: str) -> str:
        if not line.strip() or "\x00" in line:
            return line
        try:
            spans = self.spans(line)
        except Exception:  # noqa: BLE001 - an odd line stays unmarked, training goes on
            return line
        out: list[str] = []
        pos = 0
        for start, end, surface in spans:
            if start < pos or end > len(line) or line[start:end] != surface:
                return line  # spans do not tile the text as expected: leave it unmarked
            if start == pos and pos > 0:
                out.append(MORPHEME_MARKER)  # two morphemes touch: no whitespace between them
            out.append(line[pos:end])        # whitespace before the morpheme (if any) + morpheme
            pos = end
        out.append(line[pos:])
        marked = "".join(out)
        return marked if marked.replace(MORPHEME_MARKER, "") == line else line


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def _plain_pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def build_untrained(morpheme_aware: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    if morpheme_aware:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(MORPHEME_MARKER, behavior="removed"), _plain_pre_tokenizer()])
    else:
        tok.pre_tokenizer = _plain_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = DEFAULT_VOCAB_SIZE,
                    morpheme_aware: bool = False, min_frequency: int = 2, num_texts: int | None = None,
                    show_progress: bool = False):
    """Train and return a ``tokenizers.Tokenizer`` with ``vocab_size`` learned entries plus
    :data:`SPECIAL_TOKENS` (ids 0..len(SPECIAL_TOKENS)-1)."""
    from tokenizers import pre_tokenizers, trainers

    tok = build_untrained(morpheme_aware)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + len(SPECIAL_TOKENS),
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    if morpheme_aware:
        marker = MorphemeMarker()
        texts = (marker(t) for t in texts)
    tok.train_from_iterator(texts, trainer=trainer, length=num_texts)
    if morpheme_aware:
        # encode-time pre-tokeniser: plain byte-level, nothing to strip, exact round trip
        tok.pre_tokenizer = _plain_pre_tokenizer()
    return tok


def special_token_ids(tok) -> dict[str, int]:
    return {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}


def save_tokenizer(tok, path: str | os.PathLike) -> str:
    """Write the tokenizer JSON atomically; returns its sha256."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = tok.to_str(pretty=False).encode("utf-8")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class TrainReport:
    output: str
    sha256: str
    vocab_size: int
    learned: int
    special_tokens: dict
    morpheme_aware: bool
    sample: dict
    seconds_sampling: float
    seconds_training: float
    peak_rss_mb: float


def train_from_paths(paths: Iterable[str | os.PathLike], output: str | os.PathLike, *,
                     vocab_size: int = DEFAULT_VOCAB_SIZE, sample_bytes: int = DEFAULT_SAMPLE_BYTES,
                     morpheme_aware: bool = False, holdout_fraction: float = 0.0,
                     min_frequency: int = 2, sources: set[str] | None = None,
                     show_progress: bool = False) -> TrainReport:
    files = iter_input_files(paths)
    if not files:
        raise FileNotFoundError(f"no JSONL/Parquet files under {list(map(str, paths))}")
    t0 = time.perf_counter()
    records = iter_records(files)
    if sources is not None:
        records = (r for r in records if r["source"] in sources)
    texts, stats = sample_texts(records, sample_bytes, holdout_fraction=holdout_fraction)
    t1 = time.perf_counter()
    if not texts:
        raise ValueError("no text to train on")
    tok = train_tokenizer(texts, vocab_size=vocab_size, morpheme_aware=morpheme_aware,
                          min_frequency=min_frequency, num_texts=len(texts), show_progress=show_progress)
    t2 = time.perf_counter()
    sha = save_tokenizer(tok, output)
    return TrainReport(
        output=os.fspath(output), sha256=sha, vocab_size=tok.get_vocab_size(),
        learned=tok.get_vocab_size() - len(SPECIAL_TOKENS), special_tokens=special_token_ids(tok),
        morpheme_aware=morpheme_aware,
        sample={"docs_seen": stats.docs_seen, "bytes_seen": stats.bytes_seen,
                "docs_sampled": stats.docs_sampled, "bytes_sampled": stats.bytes_sampled,
                "docs_held_out": stats.docs_held_out, "per_source": stats.per_source},
        seconds_sampling=t1 - t0, seconds_training=t2 - t1, peak_rss_mb=peak_rss_mb())

"""Find and load the tokenizer a run uses: ``tokenize.tokenizer_file`` or the committed default.

The default ships as package data (``tokenizer/polyko-ko-30k.json``) and is found through
``importlib.resources``, so an installed wheel or an editable checkout both work offline.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
from dataclasses import dataclass

from tokenizer.train import EOD_TOKEN, PAD_TOKEN, SPECIAL_TOKENS

DEFAULT_TOKENIZER_NAME = "polyko-ko-30k.json"


def default_tokenizer_bytes() -> bytes:
    return importlib.resources.files("tokenizer").joinpath(DEFAULT_TOKENIZER_NAME).read_bytes()


def read_tokenizer_bytes(tokenizer_file: str | os.PathLike | None) -> tuple[bytes, str]:
    """(file bytes, where they came from). ``None`` means the committed default. Remote paths
    (``gs://``) are read through Beam's filesystems when Beam is importable."""
    if tokenizer_file is None:
        return default_tokenizer_bytes(), f"package:tokenizer/{DEFAULT_TOKENIZER_NAME}"
    path = os.fspath(tokenizer_file)
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            return f.read(), path
    with open(path, "rb") as f:
        return f.read(), path


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about the tokenizer a shard set was written with."""

    source: str
    sha256: str
    vocab_size: int
    special_tokens: dict
    eod_id: int
    pad_id: int | None

    def to_dict(self) -> dict:
        return {"file": self.source, "sha256": self.sha256, "vocab_size": self.vocab_size,
                "special_tokens": dict(self.special_tokens), "eod_id": self.eod_id, "pad_id": self.pad_id}


def tokenizer_from_bytes(data: bytes):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(data.decode("utf-8"))


def describe(data: bytes, source: str) -> TokenizerInfo:
    tok = tokenizer_from_bytes(data)
    specials = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS if tok.token_to_id(t) is not None}
    eod = tok.token_to_id(EOD_TOKEN)
    if eod is None:
        raise ValueError(f"tokenizer {source} has no {EOD_TOKEN} token (needed as end-of-document)")
    return TokenizerInfo(source=source, sha256=hashlib.sha256(data).hexdigest(),
                         vocab_size=tok.get_vocab_size(with_added_tokens=True), special_tokens=specials,
                         eod_id=eod, pad_id=tok.token_to_id(PAD_TOKEN))


def load_tokenizer(tokenizer_file: str | os.PathLike | None = None):
    """A ``tokenizers.Tokenizer`` (the committed default when ``tokenizer_file`` is None)."""
    data, _ = read_tokenizer_bytes(tokenizer_file)
    return tokenizer_from_bytes(data)

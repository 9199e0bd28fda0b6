"""The learned found-work scorer (issue 9): a linear model over hashed n-grams, pure Python.

Trained offline by `bench/train_retention.py` (scikit-learn, the `train` extra); the weights
ship beside this file. Features are word uni- and bigrams and character 3-5-grams of the
cleaned text (lower case, accents folded), plus what the rules saw (found_work.RuleSignals)
and the concept shapes of its sentences (concepts.py), all hashed with CRC-32 into 2**BITS buckets, so training and scoring share this one function.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import sys
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from listserv.retention.concepts import concepts
from listserv.retention.rules import RuleSignals
from listserv.retention.verdict import LeaveOutcome
from listserv.text import fold

BITS = 18
WEIGHTS = Path(__file__).with_name("found_work_weights.bin.gz")
_MASK = (1 << BITS) - 1
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
MAX_SCORED_CHARS = 3_000  # past this the words add little and cost time
MAX_PHRASE_CHARS = 120
# Rule features are few and strong; at full weight they drown the words and carry the rules'
# blind spots across writers (chosen by cross-validation by writer, bench/train_retention.py).
RULE_WEIGHT = 0.05
# Concept shapes (concepts.py) carry across writers where words do not; each counts this much.
CONCEPT_WEIGHT = 0.3
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & _MASK


def _words(text: str) -> list[str]:
    return _TOKEN.findall(fold(text[:MAX_SCORED_CHARS]))


def _word_buckets(words: list[str]) -> set[int]:
    grams = {f"w:{w}" for w in words}
    grams.update(f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return {_bucket(f) for f in grams}


def text_features(text: str) -> tuple[set[int], set[int]]:
    """Buckets of a cleaned text: (words and word pairs, character 3-5-grams)."""
    words = _words(text)
    joined = f" {' '.join(words)} ".encode("ascii")  # _TOKEN keeps ASCII only
    crc = zlib.crc32
    chars = {joined[i : i + n] for n in (3, 4, 5) for i in range(len(joined) - n + 1)}
    return _word_buckets(words), {crc(c) & _MASK for c in chars}


def feature_values(text: str, signals: RuleSignals | None) -> dict[int, float]:
    """Bucket -> value: each text group scaled to unit length, rule features at RULE_WEIGHT."""
    values: dict[int, float] = {}
    for group in text_features(text):
        for i in group:
            values[i] = values.get(i, 0.0) + 1.0 / math.sqrt(len(group))
    for i in rule_features(signals) if signals is not None else ():
        values[i] = values.get(i, 0.0) + RULE_WEIGHT
    for i in concept_features(text):
        values[i] = values.get(i, 0.0) + CONCEPT_WEIGHT
    return values


def concept_features(text: str) -> set[int]:
    """Buckets for the concept shapes of a cleaned text (concepts.py)."""
    return {_bucket(f"C:{name}") for name in concepts(text)}


def rule_features(signals: RuleSignals) -> set[int]:
    """Buckets for what the rules saw: their outcome and why other matches did not count."""
    names = {f"R:{signals.verdict.outcome}"}
    names.update(f"R:rejected:{why}" for why in signals.rejected)
    for flag in ("auto_reply", "other_reason", "retraction"):
        if getattr(signals, flag):
            names.add(f"R:{flag}")
    return {_bucket(n) for n in names}


@dataclass(frozen=True)
class Model:
    """Weights, bias and the two thresholds: score >= high is found work, >= low unsure."""

    weights: array[float]
    bias: float
    high: float
    low: float

    def margin(self, text: str, signals: RuleSignals | None = None) -> float:
        """The linear score of a cleaned text and what the rules saw in it (the same sum as
        feature_values, which training uses, without building it)."""
        w = self.weights
        total = self.bias
        for group in text_features(text):
            if group:
                total += sum(w[i] for i in group) / math.sqrt(len(group))
        if signals is not None:
            total += RULE_WEIGHT * sum(w[i] for i in rule_features(signals))
        return total + CONCEPT_WEIGHT * sum(w[i] for i in concept_features(text))

    def probability(self, text: str, signals: RuleSignals | None = None) -> float:
        m = self.margin(text, signals)
        return 1.0 / (1.0 + math.exp(-m)) if m > -700 else 0.0

    def deciding_words(self, text: str) -> str:
        """The sentence whose words and word pairs weigh most: the words kept on the event."""
        sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()] or [text.strip()]
        best = max(sentences, key=lambda s: sum(self.weights[i] for i in _word_buckets(_words(s))))
        return best[:MAX_PHRASE_CHARS].strip()

    def outcome(self, probability: float) -> LeaveOutcome:
        if probability >= self.high:
            return LeaveOutcome.FOUND_WORK
        return LeaveOutcome.UNSURE if probability >= self.low else LeaveOutcome.OTHER


def write_model(path: Path, weights: list[float], bias: float, high: float, low: float) -> None:
    """Weights quantised to int16 with one scale, after a one-line JSON header; gzipped."""
    scale = max((abs(w) for w in weights), default=1.0) / 32767 or 1.0
    quantised = array("h", (round(w / scale) for w in weights))
    if sys.byteorder == "big":
        quantised.byteswap()
    header = {"bits": BITS, "scale": scale, "bias": bias, "high": high, "low": low}
    raw = json.dumps(header).encode() + b"\n" + quantised.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))


def read_model(path: Path) -> Model:
    raw = gzip.decompress(path.read_bytes())
    head, _, body = raw.partition(b"\n")
    header = json.loads(head)
    if header["bits"] != BITS:
        raise ValueError(f"{path}: weights for {header['bits']} bits, scorer uses {BITS}")
    quantised = array("h")
    quantised.frombytes(body)
    if sys.byteorder == "big":
        quantised.byteswap()
    scale = float(header["scale"])
    weights = array("d", (q * scale for q in quantised))
    return Model(weights, float(header["bias"]), float(header["high"]), float(header["low"]))


@lru_cache(maxsize=1)
def shipped_model() -> Model:
    """The model shipped in the package, read once."""
    return read_model(WEIGHTS)

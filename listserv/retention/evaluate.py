"""Scoring the found-work classifier on labelled leave messages (tests/data/retention/).

Shared by `bench/retention.py` and the test summary so both print the same figures. Pure: the
caller passes `read`, which turns a raw message into (subject, text) the way the server does
(listserv.message.parse and first_text), so this room needs no message module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from listserv.retention.found_work import classify_leave
from listserv.retention.verdict import LeaveOutcome, LeaveVerdict

Reader = Callable[[bytes], tuple[str, str]]


def writer_files(folder: Path, part: str) -> list[Path]:
    """The corpus files of one part ("train", "dev", "heldout"), one per writer, in writer order:
    `heldout_w4.jsonl` before `heldout_w16.jsonl`."""
    return sorted(folder.glob(f"{part}_w*.jsonl"), key=lambda p: int(p.stem.rsplit("_w", 1)[1]))


def writer(path: Path) -> str:
    """The writer a corpus file holds: `train_w12.jsonl` -> 'w12'."""
    return "w" + path.stem.rsplit("_w", 1)[1]


def load(path: Path) -> list[dict[str, object]]:
    """One labelled message per JSON line."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def as_mail(row: dict[str, object]) -> bytes:
    """A labelled message as the raw email a member would send, with its content type."""
    msg = EmailMessage()
    msg["From"] = "member@example.org"
    msg["To"] = "networking-leave@lists.example.org"
    msg["Subject"] = " ".join(str(row.get("subject") or "").split())
    subtype = "html" if row.get("content_type") == "text/html" else "plain"
    msg.set_content(str(row.get("body") or ""), subtype=subtype)
    return msg.as_bytes()


@dataclass
class Tally:
    """Counts for one group of messages; found work is the positive class, unsure a miss."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unsure: int = 0

    def add(self, job: bool, verdict: LeaveVerdict) -> None:
        said = verdict.found_work
        self.tp += said and job
        self.fp += said and not job
        self.fn += job and not said
        self.tn += not job and not said
        self.unsure += verdict.outcome == LeaveOutcome.UNSURE

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else 1.0

    def line(self, name: str) -> str:
        return (
            f"{name:<24} n={self.n:<4} precision={self.precision:.3f} recall={self.recall:.3f} "
            f"accuracy={self.accuracy:.3f} unsure={self.unsure / max(self.n, 1):.3f}"
        )


@dataclass
class Report:
    """Overall, per kind and per language."""

    overall: Tally = field(default_factory=Tally)
    kinds: dict[str, Tally] = field(default_factory=dict)
    langs: dict[str, Tally] = field(default_factory=dict)

    def lines(self, title: str) -> list[str]:
        out = [title, self.overall.line("overall")]
        out += [self.kinds[k].line(f"kind {k}") for k in sorted(self.kinds)]
        out += [self.langs[k].line(f"lang {k}") for k in sorted(self.langs)]
        return out


def evaluate(
    rows: Iterable[dict[str, object]],
    read: Reader,
    extra_phrases: tuple[str, ...] = (),
) -> Report:
    """Each row mailed, read back as the server reads it, classified and tallied."""
    report = Report()
    for row in rows:
        subject, text = read(as_mail(row))
        verdict = classify_leave(subject, text, extra_phrases)
        job = row["label"] == "job"
        report.overall.add(job, verdict)
        report.kinds.setdefault(str(row.get("kind")), Tally()).add(job, verdict)
        report.langs.setdefault(str(row.get("lang")), Tally()).add(job, verdict)
    return report


def figure(name: str, report: Report) -> str:
    """The one summary line the test run prints."""
    t = report.overall
    return (
        f"retention classifier ({name}, {t.n} messages): precision={t.precision:.3f} "
        f"recall={t.recall:.3f} accuracy={t.accuracy:.3f} unsure={t.unsure / max(t.n, 1):.3f}"
    )

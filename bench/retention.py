"""The found-work classifier on the held-out writers and on dev (w6), as the server reads mail.

    python bench/retention.py

Each labelled message is built as a real email with its content type, parsed and read with
listserv.message (parse, first_text) and classified with classify_leave, as a leave to
`networking-leave@` is. Prints precision, recall, accuracy and the unsure share, overall, per
kind and per language, for each held-out writer (heldout_w*.jsonl) and for all of them
together; then ms per message and the size of the shipped weights.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from listserv.message import first_text, parse  # noqa: E402
from listserv.retention.evaluate import (  # noqa: E402
    as_mail,
    evaluate,
    figure,
    load,
    writer,
    writer_files,
)
from listserv.retention.found_work import classify_leave  # noqa: E402
from listserv.retention.scorer import WEIGHTS, shipped_model  # noqa: E402

DATA = ROOT / "tests" / "data" / "retention"
REPEATS = 5


def read(raw: bytes) -> tuple[str, str]:
    """(subject, text) as the server reads a command mail."""
    msg = parse(raw)
    return msg["subject"] or "", first_text(msg)


def main() -> None:
    shipped_model()  # loaded once, as in a running server; not part of the per-message time
    dev = evaluate(load(DATA / "dev_w6.jsonl"), read)
    print("\n".join(dev.lines("DEV (writer w6; tuned on, and in the shipped model's training)")))
    print()
    files = writer_files(DATA, "heldout")
    writers = [writer(f) for f in files]
    for name, path in zip(writers, files, strict=True):
        report = evaluate(load(path), read)
        print(report.overall.line(f"HELD-OUT writer {name}"))
    rows = [r for f in files for r in load(f)]
    held = evaluate(rows, read)
    print()
    print("\n".join(held.lines(f"HELD-OUT (writers {', '.join(writers)}; never tuned on)")))
    print()
    print(figure(f"held-out writers {'+'.join(writers)}", held))
    texts = [read(as_mail(r)) for r in rows]
    passes = []
    for _ in range(REPEATS):  # the machine may be shared: the best pass is the code's cost
        start = time.perf_counter()
        for subject, text in texts:
            classify_leave(subject, text)
        passes.append((time.perf_counter() - start) * 1000 / len(texts))
    print(
        f"classify_leave: {min(passes):.2f} ms per message (best of {REPEATS} passes over "
        f"{len(texts)}; worst pass {max(passes):.2f})"
    )
    print(f"weights: {WEIGHTS.name} {WEIGHTS.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

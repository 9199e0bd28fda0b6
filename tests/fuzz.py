"""The fuzz corpus: real-world samples in tests/data/fuzz/ plus deterministic mutations (issue 10)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

CORPUS = Path(__file__).parent / "data" / "fuzz"


def samples() -> list[tuple[str, bytes]]:
    """(name, raw bytes) of every stored sample, sorted by name."""
    return [
        (p.relative_to(CORPUS).as_posix(), p.read_bytes())
        for p in sorted(CORPUS.rglob("*"))
        if p.is_file() and p.name != "README.md"
    ]


def _split(raw: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i != -1:
            return raw[:i], raw[i + len(sep) :]
    return raw, b""


def nested(depth: int, kind: str = "multipart") -> bytes:
    """A message whose parts are nested depth deep (multipart or message/rfc822)."""
    if kind == "rfc822":
        head = b"".join(
            b"Content-Type: message/rfc822\n\nSubject: level %d\n" % i for i in range(depth)
        )
        return b"From: deep@example.com\nSubject: rfc822 nest\n" + head + b"\nbottom\n"
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    )
    tail = b"".join(b"--b%d--\n" % i for i in reversed(range(depth)))
    return (
        b"From: deep@example.com\nSubject: nest %d\nMIME-Version: 1.0\n" % depth
        + head
        + b"Content-Type: text/plain\n\nhi\n"
        + tail
    )


def own() -> list[tuple[str, bytes]]:
    """Nasty shapes written by hand."""
    crlf_id = b"=?utf-8?q?<a=0D=0Abcc:_evil@example.com>?="
    return [
        (
            "own/msgid-rfc2047-crlf",
            b"From: a@example.com\nSubject: join\nMessage-ID: %s\n\njoin\n" % crlf_id,
        ),
        (
            "own/subject-rfc2047-crlf",
            b"From: a@example.com\nSubject: =?utf-8?q?hi=0D=0ABcc:_x@evil.example?=\n\nhello\n",
        ),
        (
            "own/from-rfc2047-crlf",
            b"From: =?utf-8?q?Ann=0D=0AX:_y?= <a@example.com>\nSubject: hi\n\nhello\n",
        ),
        ("own/nested-1000", nested(1000)),
        ("own/nested-25", nested(25)),
        ("own/rfc822-nested-20", nested(20, "rfc822")),
        ("own/rfc822-nested-200", nested(200, "rfc822")),
        ("own/nul-bytes", b"From: a\x00@example.com\nSubject: n\x00ul\n\nbody \x00 with NUL\n"),
        ("own/no-headers", b"\njust a body\n"),
        ("own/empty", b""),
        ("own/headers-only", b"From: a@example.com\nSubject: no body"),
        (
            "own/8bit-latin1-header",
            b"From: Andr\xe9 <andre@example.com>\nSubject: caf\xe9\n\nbody\n",
        ),
        (
            "own/bad-charset",
            b'From: a@example.com\nSubject: =?x-bogus?q?hi?=\nContent-Type: text/plain; charset="x-unknown"\n\n\xff\xfe body\n',
        ),
        (
            "own/bad-utf8",
            b"From: a@example.com\nSubject: hi\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\xc3\x28 \xa0\xa1\n",
        ),
        (
            "own/bad-base64",
            b"From: a@example.com\nSubject: b64\nContent-Transfer-Encoding: base64\n\n!!!not*base64===\n",
        ),
        (
            "own/no-boundary",
            b"From: a@example.com\nSubject: mp\nContent-Type: multipart/mixed\n\n--x\n\nhi\n",
        ),
        (
            "own/unterminated-multipart",
            b'From: a@example.com\nSubject: mp\nContent-Type: multipart/alternative; boundary="q"\n\n--q\nContent-Type: text/html\n\n<p>hi\n',
        ),
        ("own/long-line-900", b"From: a@example.com\nSubject: long\n\n" + b"y" * 900 + b"\n"),
        ("own/long-line-5000", b"From: a@example.com\nSubject: long\n\n" + b"y" * 5000 + b"\n"),
        (
            "own/folded-header-1mb",
            b"From: a@example.com\nSubject: big\nX-Big: a\n"
            + b" fold fold fold fold\n" * 50000
            + b"\nbody\n",
        ),
        ("own/many-fields", b"From: a@example.com\n" + b"X-F: 1\n" * 2000 + b"\nbody\n"),
        ("own/from-garbage", b"From: <<<@@@>>>\nSubject: ???\n\nbody\n"),
        (
            "own/unsubscribe-post",
            b"From: member0@example.com\nSubject: unsubscribe\n\nplease remove me, I got a job\n",
        ),
        (
            "own/auto-submitted",
            b"From: member0@example.com\nAuto-Submitted: auto-replied\nSubject: Out of office\n\nI am away.\n",
        ),
        (
            "own/html-only",
            b"From: a@example.com\nSubject: h\nContent-Type: text/html; charset=utf-8\n\n<html><body><script>x</script><p>hi &amp; bye</body>\n",
        ),
        (
            "own/in-reply-to-junk",
            b"From: a@example.com\nSubject: re\nIn-Reply-To: <<<>>> <a@b> "
            + b"<x@y>" * 200
            + b"\nReferences: "
            + b"<r@x> " * 500
            + b"\n\nbody\n",
        ),
    ]


def mutations(name: str, raw: bytes) -> Iterator[tuple[str, bytes]]:
    """Deterministic variants of one message: truncated, duplicated headers, NULs, CR/LF."""
    head, body = _split(raw)
    seed = int(hashlib.sha256(raw).hexdigest()[:8], 16)
    yield f"{name}~half", raw[: len(raw) // 2]
    yield f"{name}~cut-header", head[: max(1, (seed % max(len(head), 1)))]
    yield (
        f"{name}~dup-headers",
        head + b"\n" + b"\n".join(head.splitlines()[:5] * 3) + b"\n\n" + body,
    )
    yield f"{name}~nul", raw.replace(b"\n", b"\x00\n", 3)
    yield f"{name}~bare-lf", raw.replace(b"\r\n", b"\n")
    yield f"{name}~crlf-id", b"Message-ID: =?utf-8?b?PGE+DQo8Yj4=?=\n" + raw
    yield (
        f"{name}~charset",
        raw.replace(b"charset=", b"charset=x-bogus-", 1).replace(b"us-ascii", b"x-unknown"),
    )


def crlf(raw: bytes) -> bytes:
    """Line ends as they travel over SMTP (smtplib sends bytes as they are)."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def corpus(mutate: bool = True, only_every: int = 1) -> list[tuple[str, bytes]]:
    """The samples and our own (CRLF line ends), plus mutations of every only_every-th."""
    base = [(name, crlf(raw)) for name, raw in samples() + own()]
    items = list(base)
    if mutate:
        for i, (name, raw) in enumerate(base):
            if i % only_every == 0:
                items.extend(mutations(name, raw))
    return items

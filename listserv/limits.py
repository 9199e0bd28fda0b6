"""Bounded work per message (issue 10): sizes checked while receiving, before the 250.

One linear pass over the bytes, no parsing: a message over a limit is refused with a 5xx that
says which limit, so no later step (the parser's recursion, header folding) can be made slow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_CONTENT_TYPE = re.compile(rb"^content-type\s*:(.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Limits:
    header_bytes: int = 256 * 1024
    header_fields: int = 1000
    mime_depth: int = 30
    mime_parts: int = 1000


def check(raw: bytes, limits: Limits) -> str | None:
    """The SMTP answer refusing raw, or None when it is within every limit.

    >>> check(b"Subject: hi\\r\\n\\r\\nbody\\r\\n", Limits())
    >>> check(b"X: y\\r\\n" * 3 + b"\\r\\n", Limits(header_fields=2))
    '552 5.3.4 Too many header fields (more than 2); send a simpler message'
    """
    end = _header_end(raw)
    if end > limits.header_bytes:
        return (
            f"552 5.3.4 Message header too big (more than {limits.header_bytes} bytes); "
            "send a shorter header"
        )
    head = raw[:end]
    fields = sum(1 for line in head.splitlines() if line and line[:1] not in b" \t")
    if fields > limits.header_fields:
        return (
            f"552 5.3.4 Too many header fields (more than {limits.header_fields}); "
            "send a simpler message"
        )
    depth, parts = mime_shape(raw, limits)
    if depth > limits.mime_depth:
        return (
            f"552 5.3.4 MIME parts nested too deep (more than {limits.mime_depth}); "
            "send a simpler message"
        )
    if parts > limits.mime_parts:
        return (
            f"552 5.3.4 Too many MIME parts (more than {limits.mime_parts}); send fewer attachments"
        )
    return None


def _header_end(raw: bytes) -> int:
    """Bytes in the top-level header block (the whole message when it has no body)."""
    if raw.startswith((b"\r\n", b"\n")):
        return 0
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i != -1]
    return min(ends) if ends else len(raw)


def _content_type(header_lines: list[bytes]) -> bytes:
    """The (unfolded) Content-Type value of a part's header lines, lower case; b'' if none."""
    value: list[bytes] | None = None
    for line in header_lines:
        if value is not None and line[:1] in (b" ", b"\t"):
            value.append(line)
            continue
        if value is not None:
            break
        m = _CONTENT_TYPE.match(line)
        if m:
            value = [m.group(1)]
    return b" ".join(value).strip() if value else b""


def mime_shape(raw: bytes, limits: Limits) -> tuple[int, int]:
    """(deepest nesting, number of parts), stopping early once past a limit.

    Linear: each line is compared with the boundaries open around it, at most mime_depth + 1.
    """
    stack: list[bytes] = []  # open multipart boundaries, innermost last
    depth = parts = 0
    header: list[bytes] | None = []  # collecting a part's header lines; None in a body
    nested = 0  # message/rfc822 levels inside the current part
    for line in raw.splitlines():
        if header is not None:
            if line:
                if len(header) < 200:  # enough to find Content-Type
                    header.append(line)
                continue
            ctype = _content_type(header)
            header = None
            if ctype.startswith(b"multipart/"):
                m = _BOUNDARY.search(ctype)
                if m:
                    stack.append(m.group(1) or m.group(2))
            elif ctype.startswith(b"message/rfc822"):
                nested += 1
                header = []  # the enclosed message starts with its own header
            depth = max(depth, len(stack) + nested)
            if depth > limits.mime_depth:
                return depth, parts
            continue
        if not stack or not line.startswith(b"--"):
            continue
        for i in range(len(stack) - 1, -1, -1):
            boundary = b"--" + stack[i]
            if line.startswith(boundary):
                if line[len(boundary) :].startswith(b"--"):
                    del stack[i:]  # the closing delimiter
                else:
                    del stack[i + 1 :]
                    parts += 1
                    nested = 0
                    header = []
                    if parts > limits.mime_parts:
                        return depth, parts
                break
    return depth, parts

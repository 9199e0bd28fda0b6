"""The one text cleaner: reply markers, HTML to text, quotes, attributions, signatures, footers.

Commands, the job-found classifier, topics and digests all read a member's words through
here, so a quote is a quote everywhere (issue 8: two HTML converters and three marker regexes
had drifted apart). HTML quotes (<blockquote>, Gmail/Yahoo/Thunderbird quote blocks, Outlook's
reply header) come out as "> " lines, so every later step sees them as quoted text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_I = re.IGNORECASE


def any_of(table: str) -> str:
    """A table of alternatives, one per line or split by ' | ', as one regex group.

    >>> any_of("a | b\\nc")
    '(?:a|b|c)'
    """
    items = (item.strip() for item in re.split(r"\s+\|\s+|\n", table))
    return "(?:" + "|".join(item for item in items if item) + ")"


def words_of(table: str) -> str:
    """Whitespace-separated words as one regex group, longest first.

    >>> words_of("to into")
    '(?:into|to)'
    """
    return "(?:" + "|".join(sorted(set(table.split()), key=len, reverse=True)) + ")"


# ---------------------------------------------------------------- subjects

# Reply markers in many mail clients' languages: Re, Aw (de), Sv (sv/da/no), Antw (nl), Vs (fi),
# Ref, Rif/R (it), Odp (pl), Res (pt).
_REPLY = r"(?:re|aw|sv|antw|vs|ref|rif|r|odp|res)"
# Forward markers: Fwd/Fw, Tr (fr), Wg (de), Rv (es), Enc (pt), I (it, Outlook).
_FORWARD = r"(?:fwd?|tr|wg|rv|enc)"
_COUNTER = r"\s*(?:\[\d+\]|\(\d+\))?\s*:\s*"
_REPLY_MARKER = re.compile(rf"^{_REPLY}{_COUNTER}", _I)
_ANY_MARKERS = re.compile(rf"^\s*(?:(?:{_REPLY}|{_FORWARD}){_COUNTER})+", _I)


def fold(text: str) -> str:
    """Lower case, accents dropped, as the retention classifiers compare words: 'Empecé' -> 'empece'.

    >>> fold("Empecé à Montréal")
    'empece a montreal'
    """
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def strip_markers(subject: str) -> str:
    """A subject without its leading reply and forward markers.

    >>> strip_markers("Re: Fwd: AW: join")
    'join'
    """
    return _ANY_MARKERS.sub("", subject)


def after_reply_marker(subject: str) -> str | None:
    """The rest of a subject that starts with one reply marker ('Re: x' -> 'x'); else None.

    Forward markers are not reply markers: a post's "Fwd:" stays in its subject.

    >>> after_reply_marker("AW: hello"), after_reply_marker("Fwd: hello")
    ('hello', None)
    """
    m = _REPLY_MARKER.match(subject)
    return subject[m.end() :] if m else None


def is_reply_subject(subject: str) -> bool:
    """True for 'Re: ...' or 'Fwd: ...': someone else's words, not the sender's."""
    return bool(_ANY_MARKERS.match(subject or ""))


# ---------------------------------------------------------------- HTML


class _HtmlText(HTMLParser):
    """HTML as plain lines; quoted blocks become '> ' lines."""

    BLOCKS = frozenset(
        {"p", "br", "div", "li", "tr", "table", "ul", "ol", "hr", "blockquote", "pre"}
        | {"h1", "h2", "h3", "h4", "h5", "h6"}
    )
    HIDDEN = frozenset({"script", "style", "head", "title"})
    QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
    REST_QUOTED_IDS = ("appendonsend", "divrplyfwdmsg")  # Outlook: all below is the original

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.buf: list[str] = []
        self.line_depth = 0
        self.depth = 0
        self.hidden = 0
        self.rest_quoted = False
        self.divs: list[bool] = []  # for each open <div>: is it a quote block?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        if tag in self.BLOCKS:
            self.flush()
        if tag == "blockquote":
            self.depth += 1
        elif tag == "div":
            values = {k: (v or "").lower() for k, v in attrs}
            quote = any(c in values.get("class", "") for c in self.QUOTE_CLASSES)
            self.rest_quoted |= values.get("id", "") in self.REST_QUOTED_IDS
            self.divs.append(quote)
            self.depth += quote

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        if tag in self.BLOCKS:
            self.flush()
        if tag == "blockquote":
            self.depth = max(0, self.depth - 1)
        elif tag == "div" and self.divs and self.divs.pop():
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.buf and data.strip():
            self.line_depth = self.depth + self.rest_quoted
        if self.buf or data.strip():
            self.buf.append(data.replace("\n", " "))

    def flush(self) -> None:
        line = " ".join("".join(self.buf).split())
        self.buf = []
        if line:
            self.lines.append("> " * self.line_depth + line)
        elif self.lines and self.lines[-1]:
            self.lines.append("")


MAX_HTML_CHARS = 2_000_000  # a bound on the work per message


def html_to_text(body: str) -> str:
    """HTML as text: tags to line breaks, entities decoded, quoted blocks as '> ' lines.

    >>> html_to_text("<p>Bye&nbsp;all</p><blockquote>I got a job</blockquote>")
    'Bye all\\n\\n> I got a job'
    """
    parser = _HtmlText()
    parser.feed(body[:MAX_HTML_CHARS])
    parser.close()
    parser.flush()
    return "\n".join(parser.lines).strip()


_HTML_HINT = re.compile(r"<(?:html|body|div|p|br|span|table|blockquote|font|b|i|a)\b[^>]*>", _I)


def looks_like_html(text: str) -> bool:
    return bool(_HTML_HINT.search(text))


# ---------------------------------------------------------------- the member's own lines

# A line that starts quoted or signature matter: it and everything below it go.
_CUT_BELOW = tuple(
    re.compile(p, _I)
    for p in (
        r"^--$",  # the signature delimiter "-- ", stripped
        r"^_{8,}$",  # Outlook's rule above the quoted reply
        r"^-{2,} ?"
        + any_of("""
        original message | forwarded message | ursprüngliche nachricht
        weitergeleitete nachricht | message d'origine | message transféré
        mensaje original | mensaje reenviado | messaggio originale | messaggio inoltrato
        mensagem original | mensagem encaminhada""")
        + r" ?-{2,}",
        r"^begin forwarded message:",
        r"^on\b.{0,300}\bwrote:?$",  # Gmail / Apple Mail attribution
        r"^el\b.{0,300}\bescribi[óo]:?$",
        r"^le\b.{0,300}\ba écrit ?:?$",
        r"^am\b.{0,300}\bschrieb\b.{0,300}:$",
        r"^il (?:giorno )?\b.{0,300}\bha scritto:?$",
        r"^em\b.{0,300}\bescreveu:?$",
    )
)
# Outlook's "From: ... / Sent: ..." block without a rule above it.
_HEADER_FROM = re.compile(r"^\*?(?:from|de|von|da)\*?:\s", _I)
_HEADER_NEXT = re.compile(
    r"^\*?"
    + words_of("""
    sent date to subject envoyé enviado gesendet datum an à para asunto objet betreff
    inviato data oggetto a assunto
""")
    + r"\*?:",
    _I,
)
_FOOTER = re.compile(
    "^"
    + any_of(r"""
    sent from (?:my\b|yahoo|outlook|mail for|gmail|protonmail|aol) | sent via\b
    get outlook for\b | enviado desde mi\b | enviado do meu\b | envoyé de(?:puis)? mon\b
    von meinem\b.*\bgesendet | gesendet von meinem\b | inviato da\b"""),
    _I,
)
_VALEDICTION = re.compile(
    "^"
    + any_of("""
    thanks | thank you | thx | many thanks | best | best regards | kind regards | regards
    warm regards | cheers | sincerely | warmly | take care | all the best | saludos | un saludo
    atentamente | gracias | muchas gracias | cordialement | bien à vous | merci | amitiés
    viele grüße | liebe grüße | beste grüße | mit freundlichen grüßen | grüße | lg | mfg
    cordiali saluti | saluti | un abbraccio | grazie | abraços | obrigado | obrigada
    atenciosamente | cumprimentos | un abrazo
""")
    + r"[\s,.!]*$",
    _I,
)
_SIGNATURE_MAX_LINES = 6  # lines allowed below a sign-off for it to count as a signature


def _cut_at(lines: list[str], i: int) -> bool:
    """True when line i starts quoted or signature matter."""
    line = lines[i].strip()
    joined = f"{line} {lines[i + 1].strip()}" if i + 1 < len(lines) else line  # wrapped "On..."
    if any(p.search(line) or p.search(joined) for p in _CUT_BELOW):
        return True
    following = lines[i + 1 : i + 5]
    return bool(_HEADER_FROM.match(line)) and any(_HEADER_NEXT.match(n.strip()) for n in following)


def own_lines(body: str) -> list[str]:
    """The sender's own lines: no quotes, attributions, signatures or mobile footers."""
    lines = body.splitlines()
    cut = next((i for i in range(len(lines)) if _cut_at(lines, i)), len(lines))
    kept = [ln.strip() for ln in lines[:cut]]
    kept = [ln for ln in kept if ln and not ln.startswith(">") and not _FOOTER.match(ln)]
    for i, line in enumerate(kept):
        if i and _VALEDICTION.match(line) and len(kept) - i - 1 <= _SIGNATURE_MAX_LINES:
            return kept[:i]
    return kept


_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_TYPOGRAPHY = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u00a0": " ",
        "\u200b": "",
    }
)


def clean_text(subject: str, body: str) -> str:
    """Subject and body as the sender wrote them: quotes, signatures, footers and HTML removed.

    A reply or forward subject ("Re: ...") is someone else's words, so it is dropped.

    >>> clean_text("Bye", "I got a job!\\n\\nOn Mon, Bob wrote:\\n> me too")
    'Bye\\nI got a job!'
    >>> clean_text("Re: news", "<p>Bye&nbsp;all</p>")
    'Bye all'
    """
    subject = "" if is_reply_subject(subject) else (subject or "")
    body = body or ""
    if looks_like_html(body):
        body = html_to_text(body)
    text = "\n".join([subject, *own_lines(body)])
    text = html.unescape(_TAG.sub(" ", text)).translate(_TYPOGRAPHY)
    return "\n".join(" ".join(ln.split()) for ln in text.splitlines() if ln.strip())

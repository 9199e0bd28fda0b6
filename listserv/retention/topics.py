"""Is a post about hiring or layoffs? The alumni pulse counts these."""

from __future__ import annotations

import re

from listserv.retention.grammar import MAX_CLASSIFIED_CHARS, clause_start, negated
from listserv.text import any_of, clean_text, strip_markers, words_of

_I = re.IGNORECASE

_ROLE = (
    words_of("""
    engineer developer designer manager analyst scientist nurse accountant writer intern
    specialist coordinator consultant administrator architect lead director recruiter technician
    assistant associate candidate programmer teacher driver clerk representative rep marketer
    editor paralegal bookkeeper""")
    + "s?"
)
TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (topic, re.compile(pattern, _I | re.M))
    for topic, pattern in (
        (
            "hiring",
            any_of(r"""
            \b(?:is|are|'re|now|currently|actively|still) hiring\b | ^\s*hiring\b(?! freeze)
            \bhiring (?:for|a|an|two|three|several|multiple|junior|senior|\d+)\b
            \bjob (?:openings?|postings?|opportunit(?:y|ies))\b
            \b(?:open|new) (?:positions?|roles?|reqs?|headcount)\b
            \bpositions? (?:available|open)\b
            \b(?:have|has|got) (?:an|two|a few|several) openings?\b | \bopenings? (?:for|on|at|in)\b
            \breferrals?\b | \b(?:happy to|can|could) refer\b | \brecruiting (?:for|a|an)\b
            \bapply (?:here|now|online|by)\b"""),
        ),
        (
            "hiring",
            rf"\blooking for (?:an?|two|several) (?:[\w-]+ ){{0,2}}{_ROLE}\b"
            r"(?!\s+(?:position|role|job|opening))",
        ),  # not "a manager position": a seeker
        (
            "hiring",
            any_of(r"""
            \bestamos contratando\b | \bvacantes?\b | \bofertas? de (?:empleo|trabajo)\b
            \bse busca\b
            \bnous recrutons\b | \bon recrute\b | \bpostes? à pourvoir\b | \boffres? d'emploi\b
            \bwir stellen ein\b | \bstellenangebote?\b | \bwir suchen (?:eine?n?|ab sofort)\b
            \boffene stellen?\b"""),
        ),
        (
            "layoff",
            any_of(r"""
            \blaid off\b | \blay-?offs?\b | \b(?:was|were|been|got|being) let go\b
            \blost (?:my|his|her|their|our) jobs?\b | \bjob loss(?:es)?\b
            (?-i:\bRIF(?:s|'d|ed)?\b)
            \breduction in force\b | \bdownsiz(?:ed|ing)\b | \bfurlough(?:ed|s)?\b
            \bredundanc(?:y|ies)\b | \bmade redundant\b | \bjob cuts\b | \bcutting (?:\d+ )?jobs\b
            \brestructuring\b | \bWARN notice\b
            \b(?:position|role|job|team|department)s? (?:was |were |got )?eliminated\b
            \b(?:position|role|job|team|department)s? (?:has|have) been eliminated\b
        """),
        ),
        (
            "layoff",
            any_of(r"""
            \bdespid(?:o|os|ieron|ido|ida)\b | \bme echaron\b | \brecortes? de personal\b
            \bperd[ií] mi (?:trabajo|empleo)\b | \blicenci(?:é|ée|és|ées|ement|ements)\b
            \bplan social\b | \bsuppressions? de postes?\b | \bperdu mon (?:emploi|travail|poste)\b
            \bentlassen\b | \bentlassungen?\b | \bstellenabbau\b | \bgekündigt\b
            \bkündigungswelle\b
        """),
        ),
    )
)


def classify_topic(subject: str, body: str) -> str | None:
    """'hiring', 'layoff' or None for a post; more hits win, then the earlier one.

    >>> classify_topic("Acme is hiring", ""), classify_topic("", "I was laid off.")
    ('hiring', 'layoff')
    >>> print(classify_topic("Coffee on Tuesday?", ""))
    None
    """
    subject = strip_markers(subject or "")
    text = "\n".join([subject, clean_text("", body)])[:MAX_CLASSIFIED_CHARS]
    hits: dict[str, list[int]] = {}
    for topic, pattern in TOPICS:
        for m in pattern.finditer(text):
            before = text[: m.start()]
            if not negated(before[clause_start(before) :]):  # "we are not hiring", "no layoffs"
                hits.setdefault(topic, []).append(m.start())
    if not hits:
        return None
    return max(hits, key=lambda t: (len(hits[t]), -min(hits[t])))

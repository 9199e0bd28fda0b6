"""Is a post to the list address really a request to leave? (SPEC 5, rule 5)"""

from __future__ import annotations

import re

from listserv.retention.grammar import HYPOTHETICAL, clause_start, negated
from listserv.text import any_of, clean_text

_I = re.IGNORECASE
MAX_UNSUBSCRIBE_WORDS = 40  # SPEC rule 5: an unsubscribe posted to the list is short
# A Subject that merely starts with "unsub..." ("Unsubscribe tips") is a topic, not a request,
# once the body says more than a sign-off's worth of its own (issue 11).
MAX_BODY_WORDS_UNDER_A_TOPIC = 8

_COMMAND = any_of(r"""
    unsubscribe | unsub | remove | leave | stop | opt[ -]?out | sign ?off | cancel
    d[ée]sabonner | d[ée]sinscription | d[ée]sabonnement | baja | darme de baja
    abmelden | abmeldung | austragen""")
UNSUBSCRIBE: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, _I)
    for p in (
        # a whole line that is the command: "unsubscribe", "Remove me please."
        rf"^(?:please |pls |kindly )?{_COMMAND}(?: (?:me|please|pls|now|thanks|thank you"
        r"|from (?:this|the) list|this address))*[\s.!]*$",
        # a line that starts with the command and gives a reason: "unsubscribe - got a job"
        r"^(?:please |pls |kindly )?(?:unsubscribe|unsub)\b(?! (?:link|button|url|page|option"
        r"|instructions|process|footer|feature|header|function)s?\b)",
        any_of(r"""
        \bunsubscribe me\b | \bopt me out\b | \bcancel my (?:subscription|membership)\b
        \b(?:please|pls|plz|kindly|can you|could you) (?:\w+ )?unsubscribe\b
        \b(?:please|pls|plz|kindly|can you|could you) (?:\w+ )?(?:remove me|take me off)\b
        \b(?:remove|delete|drop|take|get) me (?:off|from|out of)\b
        \bremove (?:my|this) (?:e-?mail|address)\b
        \bstop (?:sending|emailing|mailing) me\b | \bno more e-?mails\b
        \b(?:i'?d like|i would like|i want|i wish) to (?:unsubscribe|be removed|opt out)\b
        \b(?:i'?d like|i would like|i want|i wish) to leave (?:this|the) (?:list|group)\b"""),
        any_of(r"""
        \bd[ée]sabonn(?:er|ez|e)\b | \bd[ée]sinscri(?:re|vez|s|ption)\b
        \bme retirer de (?:la|cette) liste\b | \bretirez-moi\b
        \b(?:darme|darse|dar) de baja\b | \bdenme de baja\b | \bdesuscribir(?:me)?\b
        \bcancelar (?:mi )?suscripci[óo]n\b
        \b(?:quitarme|qu[ií]tenme|sacarme|s[áa]quenme) de (?:la|esta) lista\b
        \b(?:eliminarme|elim[ií]nenme|borrarme|b[óo]rrenme) de (?:la|esta) lista\b
        \babmelden\b | \babbestellen\b | \baustragen\b | \btragt mich aus\b
        \bmeldet mich\b.{0,30}\bab\b
        \b(?:aus dem|vom) verteiler\b | \bvon der liste (?:nehmen|streichen|entfernen)\b"""),
    )
)
STARTS_WITH_UNSUBSCRIBE = UNSUBSCRIBE[1]
# Talk about unsubscribing rather than a request: how-to questions, someone else, "why do people".
_NOT_A_REQUEST = re.compile(
    any_of(r"""
    \bhow (?:do|can|would|should|to)\b | \bwhy (?:do|did|are|is|would)\b
    \blist-unsubscribe\b
    \bunsubscribe (?:my (?!(?:e-?mail|address|account|self)\b)|him\b|her\b|them\b|someone|others)
    \bunsubscribe (?:people|everyone|a member|members)\b
    \bremove (?:him|her|them|my (?:colleague|friend|coworker|boss|wife|husband|partner))\b"""),
    _I,
)


def is_unsubscribe_request(subject: str, body: str) -> bool:
    """A short, command-like post to the list address that really asks to leave (SPEC rule 5).

    >>> is_unsubscribe_request("unsubscribe", "")
    True
    >>> is_unsubscribe_request("", "How do I unsubscribe?")
    False
    >>> is_unsubscribe_request("Unsub tips", "Most job boards add a header so your mail app can remove you.")
    False
    """
    text = clean_text(subject, body)
    if not text or len(text.split()) > MAX_UNSUBSCRIBE_WORDS or _NOT_A_REQUEST.search(text):
        return False
    lines = text.splitlines()
    body_words = len(clean_text("", body).split())
    subject_is_a_topic = bool(subject) and lines[0] == " ".join(subject.split())
    subject_is_a_topic = subject_is_a_topic and body_words > MAX_BODY_WORDS_UNDER_A_TOPIC
    for i, line in enumerate(lines):
        for pattern in UNSUBSCRIBE:
            if i == 0 and subject_is_a_topic and pattern is STARTS_WITH_UNSUBSCRIBE:
                continue
            for m in pattern.finditer(line):
                clause = line[: m.start()][clause_start(line[: m.start()]) :]
                if not negated(clause) and not HYPOTHETICAL.search(clause):  # "please don't ..."
                    return True
    return False

"""The found-work rules (RETENTION.md): phrases, and what cancels them.

No I/O here: text in, values out. Precision beats recall throughout: a false
"found work" keeps someone on a list they asked to leave (SPEC section 5), so
every doubt (negation, hypothetical, someone else's news, an auto-reply, a
later retraction) resolves to "not found work".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from listserv.retention.grammar import (
    HYPOTHETICAL,
    WORD,
    clause_start,
    negated,
)
from listserv.retention.verdict import LeaveOutcome, LeaveVerdict
from listserv.text import any_of, words_of

_I = re.IGNORECASE

# ---------------------------------------------------------------- vocabulary


def _slips(word: str) -> str:
    """The word, or the word with one letter dropped, doubled or swapped: 'postion', 'jobb'."""
    out = {word}
    for i in range(len(word)):
        out |= {word[:i] + word[i + 1 :], word[:i] + word[i] + word[i:]}
        if i + 1 < len(word):
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    return " ".join(out)


# A few words may sit between verb and noun ("landed my dream role"), never a function word,
# so "got tired of the job" or "found the group helpful in my job search" do not match.
_STOP_EN = words_of("""
    of to for in at on from about with by into over that this these those it its and or but no
    not never any what which who because so if when as than through via is was are were be been
    me you him them us he she they we interview interviews call email reply rejection lot lots
    hang tired sick rid nothing anything""")
_STOP_ES = words_of("de del en a al con para por que y o pero no sin ningún ningun ninguna ni")
_STOP_FR = words_of("""
    de d' des à au aux en pour par avec que qui et ou mais pas ne aucun aucune sans dans sur""")
_FILLER = rf"(?:(?!{_STOP_EN}\b)[\w'-]+\s+){{0,4}}"
_FILLER_ES = rf"(?:(?!{_STOP_ES}\b)[\w'-]+\s+){{0,3}}"
_FILLER_FR = rf"(?:(?!{_STOP_FR}\b)[\w'-]+\s+){{0,3}}"
# Nouns that are about the search, not a job: "job board", "job interview", "offer of admission".
_NOT_AFTER = (
    r"(?!\s*[-/]?\s*"
    + any_of(r"""
    search\w* | hunt\w* | boards? | posting\w* | listing\w* | leads? | alerts? | fairs? | seek\w*
    market | sites? | applications? | interviews? | descriptions? | ads? | club | done | scams?
    tips | advice | titles? | rejections? | training | coach\w* | of admission | to study
    for (?:grad|graduate) school""")
    + r"\b)"
)

_JOB = words_of(f"""job jobs jbo jobb joob positions role roles gig gigs placement internship contract
                  {_slips("position")} {_slips("employment")}""")
_OFFER = words_of(f"offers {_slips('offer')}")
_ACCEPTED = words_of(f"took taken excepted {_slips('accepted')}")
_ACQUIRE = any_of(
    f"did get | {words_of('got gotten have secured scored snagged nabbed obtained')}"
    f" | {words_of(_slips('landed'))}"
)
_FOUND = any_of("have found | found | foud | fuond")
_START = words_of("start starting started begin beginning began commence commencing")
_HIRED = words_of(f"rehired recruited hird hierd {_slips('hired')}")
_DAY = words_of("monday tuesday wednesday thursday friday saturday sunday tomorrow")
# A capitalised name: "Stark Industries".
_COMPANY = r"(?-i:[A-Z])[\w&.'-]*(?: (?-i:[A-Z])[\w&.'-]*)*"


class Rule(NamedTuple):
    """A found-work phrase. subject: its speaker must be the sender. weak: counts only when no
    other reason is given. unsure: says the search is over, not why (RETENTION.md rule 9)."""

    pattern: re.Pattern[str]
    subject: bool
    weak: bool
    unsure: bool


def _rule(regex: str, subject: bool = True, weak: bool = False, unsure: bool = False) -> Rule:
    return Rule(re.compile(regex, _I), subject, weak or unsure, unsure)


# ---------------------------------------------------------------- the phrase table

FOUND_WORK: tuple[Rule, ...] = (
    # English: a first-person verb, then a job noun a few words on.
    _rule(rf"\b{_ACQUIRE}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # got a job, landed my dream role
    _rule(
        rf"\b(?:got|gotten|received|recieved|landed|did get|signed|{_ACCEPTED})\s+{_FILLER}"
        rf"{_OFFER}\b{_NOT_AFTER}"
    ),  # got an offer, accepted a job offer
    _rule(rf"\b{_ACCEPTED}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # accepted a position
    _rule(rf"\b{_FOUND}\s+{_FILLER}(?:{_JOB}|work)\b{_NOT_AFTER}"),  # found work, found employment
    _rule(rf"\b{_START}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # I start my new role
    _rule(rf"\b(?:was|been|got|were) offered\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # offered the job
    _rule(rf"\boffered me\s+{_FILLER}{_JOB}\b{_NOT_AFTER}", subject=False),
    _rule(
        rf"\b(?:got|been|was|were|am|'m|im)(?: (?:now|just|finally|officially|been))*"
        rf" {_HIRED}\b"
    ),
    _rule(r"\b(?:am|'m|im)(?: (?:now|finally|officially|gainfully|happily))* employed\b"),
    _rule(rf"^(?:finally |just |now |officially )?(?:{_HIRED}|employed)\b"),  # "Hired! Bye."
    _rule(rf"\b{_HIRED} me\b", subject=False),  # Acme hired me
    _rule(r"\bemployed again\b|\bno longer unemployed\b"),
    _rule(r"\b(?:made|extended|gave|sent) me (?:an?|the|their) (?:\w+ )?offer\b", subject=False),
    _rule(r"\boffer accepted\b", subject=False),
    _rule(
        r"\b(?:my|the|their) (?:job )?offer (?:finally |officially )?(?:came|has come|come)"
        r" through\b",
        subject=False,
    ),
    _rule(r"\bsigned (?:on )?with (?-i:[A-Z])", weak=True),  # signed with Initech
    _rule(rf"\b{_START} (?:work(?:ing)? )?(?:at|with) (?-i:[A-Z])", weak=True),  # starting at Acme
    _rule(
        rf"\bi(?:'ll| will)? (?:start|begin)(?: work)?(?: on)? (?:{_DAY}"
        rf"|next (?:week|month|{_DAY})|in (?:a|two|three|four|a few|\d+) (?:days?|weeks?))\b",
        subject=False,
    ),  # I start Monday
    _rule(
        r"\b(?:i'?m|i am|i'll be|i will be|i've) (?:officially |now |going to be )?"
        rf"(?:joining|joined) {_COMPANY}(?= as\b| on\b| next\b| in\b| this\b|[!.]|$)",
        subject=False,
        weak=True,
    ),  # I'm joining Stark Industries as ...
    _rule(r"\b(?:joined|joining) (?:the|a) (?:[\w-]+ )?team (?:at|of) "),  # joined the team at X
    _rule(
        rf"\b(?:i'll be|i'?m|i am|i will be) (?:heading|moving|going) (?:over )?to {_COMPANY}"
        r"(?: \w+){0,3}? as (?:a|an|the|their|its)\b",
        subject=False,
    ),  # heading to X as a ...
    _rule(
        r"\b(?:i'?m|i am|i'll|i will)(?: (?:now|going to|gonna|officially))?(?: be)? working "
        r"(?:full[- ]time |part[- ]time )?(?:at|for) ",
        subject=False,
    ),  # I'm now working for X
    _rule(r"\b(?:i'?m|i am) (?:now |finally )?back (?:to|at) work\b", subject=False),
    _rule(
        r"\b(?:i'?m|i am) (?:now |officially |finally )?(?:a|an) (?:[\w-]+ ){0,3}employee\b",
        subject=False,
    ),  # I'm now a full-time employee
    _rule(rf"\bmy new (?:job|role|position|gig|employer|workplace)\b{_NOT_AFTER}", subject=False),
    _rule(rf"^new (?:job|role|position|gig)\b{_NOT_AFTER}"),  # "New job, new city!"
    _rule(r"\bmy first day (?:at|with|is|will be|of work|on the job)\b", subject=False),
    _rule(r"\b(?:my|the) (?:job )?(?:search|hunt) is (?:\w+ )?over\b", subject=False, unsure=True),
    _rule(
        r"\bno longer (?:looking|searching|job[- ]?(?:hunting|seeking|searching))\b"
        r"|\bnot looking anymore\b|\boff the (?:job )?market\b",
        unsure=True,
    ),
    # Spanish: the verb's ending already says "I".
    _rule(
        r"\b(?:encontr[eé]|consegu[ií]|obtuve|he (?:encontrado|conseguido|obtenido)|ya tengo"
        rf"|tengo (?:un )?nuevo)\s+{_FILLER_ES}"
        r"(?:trabajo|empleo|chamba|curro|laburo|puesto|plaza)\b",
        subject=False,
    ),
    _rule(
        rf"\b(?:acept[eé]|firm[eé]|he (?:aceptado|firmado))\s+{_FILLER_ES}"
        r"(?:oferta|contrato|puesto|trabajo|empleo)\b",
        subject=False,
    ),
    _rule(
        r"\bme (?:contrataron|han contratado|contrató|acaban de contratar"
        r"|dieron el (?:trabajo|puesto))\b",
        subject=False,
    ),
    _rule(
        r"\b(?:empiezo|comienzo|empec[eé]|comenc[eé]) (?:a trabajar"
        r"|(?:un|mi) nuevo (?:trabajo|empleo|puesto)|en (?-i:[A-Z])"
        r"|el (?:lunes|martes|miércoles|jueves|viernes)|mañana|la pr[óo]xima semana)",
        subject=False,
    ),
    _rule(r"\bmi nuevo (?:trabajo|empleo|puesto)\b", subject=False),
    _rule(r"\bya no (?:estoy )?buscando\b|\bya no busco\b", subject=False, unsure=True),
    # French
    _rule(
        r"\bj'ai (?:enfin |finalement )?(?:trouv[ée]|d[ée]croch[ée]|obtenu|retrouv[ée]|eu"
        rf"|d[ée]nich[ée])\s+{_FILLER_FR}"
        r"(?:emploi|travail|poste|job|boulot|cdi|cdd|contrat|stage)\b",
        subject=False,
    ),
    _rule(
        rf"\bj'ai (?:enfin |finalement )?(?:accept[ée]|sign[ée])\s+{_FILLER_FR}"
        r"(?:offre|contrat|poste|cdi|cdd|proposition)\b",
        subject=False,
    ),
    _rule(
        r"\b(?:j'ai été|je suis|je viens d'être) (?:enfin )?(?:embauch|recrut|engag)"
        r"[ée]e?s?\b",
        subject=False,
    ),
    _rule(
        r"\bje (?:commence|démarre|débute) (?:(?:un|une|mon|ma) (?:nouveau |nouvel |nouvelle )?"
        r"(?:travail|poste|emploi|job|boulot|contrat|cdi)|lundi|mardi|mercredi|jeudi|vendredi"
        r"|demain|la semaine prochaine|le mois prochain|chez (?-i:[A-Z]))",
        subject=False,
    ),
    _rule(r"\bmon nouvel? (?:poste|emploi|travail|job|boulot|employeur)\b", subject=False),
    _rule(r"\bje ne (?:re)?cherche plus\b", subject=False, unsure=True),
    # German: "ich habe ... gefunden" with no kein/nicht on the way.
    _rule(
        r"\bich habe (?:(?!kein|nicht|nie)\w+ ){0,3}(?:job|stelle|arbeit|anstellung|arbeitsstelle"
        r"|festanstellung|position|arbeitsplatz|jobangebot|angebot|arbeitsvertrag|vertrag)\b"
        r"(?:(?!nicht|nie|kein)[^.!?,;]){0,40}?"
        r"\b(?:gefunden|bekommen|erhalten|ergattert|angenommen|unterschrieben)\b",
        subject=False,
    ),
    _rule(
        r"\bich habe (?:jetzt |nun |endlich |wieder )?(?:eine|einen) neuen? (?:job|stelle|arbeit"
        r"|anstellung|arbeitsstelle|position)\b",
        subject=False,
    ),
    _rule(r"\b(?:ich (?:wurde|bin)|mich) (?:\w+ )?eingestellt\b", subject=False),
    _rule(
        r"\bich (?:fange|beginne) (?:am|im|ab|nächsten?|morgen|übermorgen|bei|zum)\b"
        r"(?:(?!umschulung|ausbildung|studium|kurs|schule)[^.!?,;]){0,40}\ban\b",
        subject=False,
    ),
    _rule(r"\bich beginne (?:eine neue|einen neuen|meine neue|meinen neuen|bei)\b", subject=False),
    _rule(
        r"\b(?:meine neue stelle|meinen neuen job|mein neuer job|meine neue arbeit"
        r"|meiner neuen stelle)\b",
        subject=False,
    ),
    _rule(r"\bich suche nicht mehr\b", subject=False, unsure=True),
)

# ---------------------------------------------------------------- what cancels it

# A retraction at or after the phrase undoes it ("accepted an offer, but it was rescinded");
# one before it does not ("my last offer fell through, but I got a job").
_VETO = re.compile(
    r"\b"
    + any_of(r"""
    rescind\w* | fell through | fall(?:s|en)? through | fell apart | withdr[ae]w\w* | revoked
    reneged | pulled (?:the|my|their|his|her) (?:job )?offer | turned (?:it|them|that) down
    turned down (?:the|their|an?|that) (?:\w+ )?(?:offer|job|position|role)
    declined (?:it|the|their|that) | went with (?:an|another|a different|someone|the other|a)
    didn'?t work out | did not work out | scam\w* | phishing | spam\w* | fake | fraud\w*
    just kidding | still unemployed
    (?:i'?m|i am|but|and) still (?:looking|searching|job[- ]hunting|unemployed)
    (?:let go|fired|dismissed|terminated) (?:after|from)
    (?<!after being )(?<!after getting )(?<!since being )laid off
    lost (?:my|the|that) (?:new )?job | made redundant
    still deciding | haven'?t decided | have not decided | undecided | deciding whether
    background check | back in (?:19|20)\d\d | years ago | been there (?:since|for)
    while i(?:'m)? (?:look|search|job[- ]hunt)\w* | nicht bestanden | gekündigt | entlassen
    se cayó | retiraron la oferta | rechacé | annulée? | j'ai refusé
    zurückgezogen | abgesagt | geplatzt""")
    + r"\b",
    _I,
)
# Weak phrases ("no longer looking", "started at Columbia") mean nothing beside another reason.
_OTHER_REASON = re.compile(
    r"\b"
    + any_of(r"""
    retir\w* | school | college | universit\w* | studies | studying | student | stay(?:ing)? home
    stay-at-home | kids | care for | caring for | caregiv\w* | health | giving up | give up
    gave up | burn(?:ed|t)? out | parental leave | maternity | paternity | sabbatical
    master'?s | degree | phd | mba | bootcamp | semester | grad school
    jubilad\w* | retraite | ruhestand | rente""")
    + r"\b",
    _I,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"\b"
    + any_of("""
    automatic reply | auto[- ]?reply | autoreply | out of (?:the )?office | abwesenheit\\w*
    automatische antwort | réponse automatique | respuesta automática | ooo""")
    + r"\b",
    _I,
)
_AUTO_REPLY_BODY = re.compile(
    r"\b"
    + any_of("""
    out of (?:the )?office | limited access to (?:my )?e-?mail | i am currently away
    will respond (?:to your (?:e-?mail|message) )?when i return
    (?:i am|i'm) (?:currently )?(?:away|on vacation|on holiday|on annual leave)
    nicht im büro | abwesend | absente? du bureau | fuera de la oficina""")
    + r"\b",
    _I,
)
# Conditionals, hopes and counterfactuals in the phrase's own clause.
_NEGATED_AFTER = re.compile(r"^[^,.;!?]{0,30}?\b(?:nicht|nie|niemals)\b", _I)  # German verb-last
_FIRST_PERSON = frozenset("i i've ive i'm im i'd i'll we we've we're myself".split())
_THIRD_PERSON = frozenset(
    """
    he she they he's she's they've they're who you wife husband partner spouse friend friends son
    daughter brother sister mom mum dad mother father colleague coworker roommate boyfriend
    girlfriend fiance fiancé cousin neighbor neighbour everyone someone somebody people members
    member others cohort classmate mine""".split()
)
_SKIP = frozenset(
    """
    just finally finaly finnally recently officially actually also now happily successfully
    already have has had been both all really did do am is are was were be will gladly
    thankfully luckily even""".split()
)
_LEAD_INS = frozenset(
    """
    so but because cause cuz since as yay woohoo hooray yes well ok okay news update unsubscribe
    please pls thanks lol plus ps today yesterday anyway anyways""".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\d\.)\s+|\n+|\s[-–—]+\s")  # "1. März" is no end

# ---------------------------------------------------------------- the logic


def _sentences(text: str) -> Iterator[tuple[int, str]]:
    """(offset, sentence) pairs."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        yield start, text[start : m.start()]
        start = m.end()
    yield start, text[start:]


def _sender_is_subject(clause: str) -> bool:
    """The phrase's subject is the sender (or left out), not "my wife" or "Bob who"."""
    words = WORD.findall(clause.lower())
    while words and words[-1] in _SKIP:
        words.pop()
    if not words or words[-1] in _FIRST_PERSON or words[-1] in _LEAD_INS:
        return True
    if words[-1] in ("and", "&"):  # "I've been offered and accepted", "my wife quit and got a job"
        earlier = [w for w in words if w in _FIRST_PERSON or w in _THIRD_PERSON]
        return not earlier or earlier[-1] in _FIRST_PERSON
    return False


def _why_not(rule: Rule, sentence: str, m: re.Match[str], offset: int, vetoes: list[int]) -> str:
    """Why this match, in its context, does not say the sender found work ('' when it does)."""
    before = sentence[: m.start()]
    at = clause_start(before)
    clause = before[at:]
    if before.count('"') % 2:  # inside quotation marks: "I got a job!" posts
        return "quoted"
    if any(v >= offset + at for v in vetoes):
        return "retracted"
    if negated(clause) or _NEGATED_AFTER.match(sentence[m.end() :]):
        return "negated"
    if HYPOTHETICAL.search(clause):
        return "hypothetical"
    return "" if not rule.subject or _sender_is_subject(clause) else "someone_else"


@lru_cache(maxsize=64)
def _extra_rules(phrases: tuple[str, ...]) -> tuple[Rule, ...]:
    """A list's extra_job_phrases as rules: literal, any speaker, still negatable."""
    return tuple(
        _rule(rf"(?<!\w){re.escape(p.strip())}(?!\w)", subject=False) for p in phrases if p.strip()
    )


def _is_auto_reply(subject: str, text: str) -> bool:
    """An out-of-office or vacation auto-reply: not the member speaking."""
    return bool(_AUTO_REPLY_SUBJECT.search(subject or "") or _AUTO_REPLY_BODY.search(text))


@dataclass(frozen=True)
class RuleSignals:
    """What the rules see in a leave's cleaned text: their verdict, and why other matches did
    not count (negated, hypothetical, retracted, quoted, someone_else); features for the scorer."""

    verdict: LeaveVerdict
    auto_reply: bool
    other_reason: bool
    retraction: bool
    rejected: frozenset[str]


def _scan(text: str, rules: Sequence[Rule], other_reason: bool) -> tuple[LeaveVerdict, set[str]]:
    """The first phrase that counts, and why the matches before it did not."""
    vetoes = [m.start() for m in _VETO.finditer(text)]
    rejected: set[str] = set()
    for offset, sentence in _sentences(text):
        if sentence.rstrip().endswith("?"):
            continue
        for rule in rules:
            if rule.weak and other_reason:
                rejected.add("other_reason")
                continue
            for m in rule.pattern.finditer(sentence):
                why = _why_not(rule, sentence, m, offset, vetoes)
                if why:
                    rejected.add(why)
                    continue
                outcome = LeaveOutcome.UNSURE if rule.unsure else LeaveOutcome.FOUND_WORK
                return LeaveVerdict(outcome, m.group(0).strip()), rejected
    return LeaveVerdict(LeaveOutcome.OTHER, None), rejected


def rule_signals(subject: str, text: str) -> RuleSignals:
    """The rules run over cleaned text (clean_text): the first phrase that counts decides."""
    other_reason = bool(_OTHER_REASON.search(text))
    verdict, rejected = _scan(text, FOUND_WORK, other_reason)
    retraction = bool(_VETO.search(text))
    return RuleSignals(
        verdict, _is_auto_reply(subject, text), other_reason, retraction, frozenset(rejected)
    )


def extra_phrase_hit(text: str, extra_phrases: Sequence[str]) -> str | None:
    """The first of a list's extra_job_phrases that counts: not negated, hypothetical or
    retracted; any speaker."""
    rules = _extra_rules(tuple(extra_phrases))
    return _scan(text, rules, False)[0].phrase if rules else None

"""Pure retention classifiers: found work on leaving? hiring or layoff news? unsubscribe post?

No I/O here: text in, values out. Precision beats recall throughout: a false
"found work" keeps someone on a list they asked to leave (SPEC section 5), so
every doubt (negation, hypothetical, someone else's news, an auto-reply, a
later retraction) resolves to "not found work".
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

_I = re.IGNORECASE
MAX_UNSUBSCRIBE_WORDS = 40  # SPEC rule 5: an unsubscribe posted to the list is short
MAX_CLASSIFIED_CHARS = 8_000  # the sender's words past this decide nothing; bounds the work


def _any(table: str) -> str:
    """A table of alternatives, one per line or split by ' | ', as one regex group."""
    items = (item.strip() for item in re.split(r"\s+\|\s+|\n", table))
    return "(?:" + "|".join(item for item in items if item) + ")"


def _words(table: str) -> str:
    """Whitespace-separated words as one regex group, longest first."""
    return "(?:" + "|".join(sorted(set(table.split()), key=len, reverse=True)) + ")"


# ---------------------------------------------------------------- clean_text

_REPLY_SUBJECT = re.compile(r"^\s*(?:re|fwd?|aw|wg|antw|rv|tr|sv|vs)\s*(?:\[\d+\])?\s*:", _I)
# A line that starts quoted or signature matter: it and everything below it go.
_CUT_BELOW = tuple(re.compile(p, _I) for p in (
    r"^--$",  # the signature delimiter "-- ", stripped
    r"^_{8,}$",  # Outlook's rule above the quoted reply
    r"^-{2,} ?" + _any("""
        original message | forwarded message | ursprüngliche nachricht
        weitergeleitete nachricht | message d'origine | message transféré
        mensaje original | mensaje reenviado""") + r" ?-{2,}",
    r"^begin forwarded message:",
    r"^on\b.{0,300}\bwrote:?$",  # Gmail / Apple Mail attribution
    r"^el\b.{0,300}\bescribi[óo]:?$",
    r"^le\b.{0,300}\ba écrit ?:?$",
    r"^am\b.{0,300}\bschrieb\b.{0,300}:$",
))
# Outlook's "From: ... / Sent: ..." block without a rule above it.
_HEADER_FROM = re.compile(r"^\*?(?:from|de|von)\*?:\s", _I)
_HEADER_NEXT = re.compile(r"^\*?" + _words("""
    sent date to subject envoyé enviado gesendet datum an à para asunto objet betreff
""") + r"\*?:", _I)
_FOOTER = re.compile("^" + _any(r"""
    sent from (?:my\b|yahoo|outlook|mail for|gmail|protonmail|aol) | sent via\b
    get outlook for\b | enviado desde mi\b | enviado do meu\b | envoyé de(?:puis)? mon\b
    von meinem\b.*\bgesendet | gesendet von meinem\b"""), _I)
_VALEDICTION = re.compile("^" + _any("""
    thanks | thank you | thx | many thanks | best | best regards | kind regards | regards
    warm regards | cheers | sincerely | warmly | take care | all the best | saludos | un saludo
    atentamente | gracias | muchas gracias | cordialement | bien à vous | merci | amitiés
    viele grüße | liebe grüße | beste grüße | mit freundlichen grüßen | grüße | lg | mfg
""") + r"[\s,.!]*$", _I)
_SIGNATURE_MAX_LINES = 6  # lines allowed below a sign-off for it to count as a signature

_HTML_HINT = re.compile(r"<(?:html|body|div|p|br|span|table|blockquote|font|b|i|a)\b[^>]*>", _I)
_HTML_DROP = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", _I | re.S)
_HTML_QUOTE = re.compile(r"<div\b[^>]*(?:gmail_quote|appendonsend|divRplyFwdMsg).*", _I | re.S)
_BLOCKQUOTE = re.compile(r"<(/?)blockquote\b[^>]*>", _I)
_HTML_BREAK = re.compile(r"<br\s*/?>|</?(?:p|div|li|tr|h[1-6]|table|ul|ol|hr)\b[^>]*>", _I)
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_TYPOGRAPHY = str.maketrans({
    "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u200b": "",
})


def _drop_blockquotes(body: str) -> str:
    """What is outside <blockquote> elements, however nested; an unclosed one runs to the end."""
    kept: list[str] = []
    depth = pos = 0
    for m in _BLOCKQUOTE.finditer(body):
        if depth == 0:
            kept.append(body[pos:m.start()])
        depth = max(0, depth - 1) if m.group(1) else depth + 1
        pos = m.end()
    if depth == 0:
        kept.append(body[pos:])
    return "".join(kept)


def _html_to_text(body: str) -> str:
    """Tags to line breaks, quoted blocks dropped, entities decoded."""
    body = _drop_blockquotes(_HTML_QUOTE.sub("", _HTML_DROP.sub("", body)))
    return html.unescape(_TAG.sub("", _HTML_BREAK.sub("\n", body)))


def _cut_at(lines: list[str], i: int) -> bool:
    """True when line i starts quoted or signature matter."""
    line = lines[i].strip()
    joined = f"{line} {lines[i + 1].strip()}" if i + 1 < len(lines) else line  # wrapped "On..."
    if any(p.search(line) or p.search(joined) for p in _CUT_BELOW):
        return True
    following = lines[i + 1:i + 5]
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


def clean_text(subject: str, body: str) -> str:
    """Subject and body as the sender wrote them: quotes, signatures, footers and HTML removed.

    A reply or forward subject ("Re: ...") is someone else's words, so it is dropped.

    >>> clean_text("Bye", "I got a job!\\n\\nOn Mon, Bob wrote:\\n> me too")
    'Bye\\nI got a job!'
    >>> clean_text("Re: news", "<p>Bye&nbsp;all</p>")
    'Bye all'
    """
    subject = "" if _REPLY_SUBJECT.match(subject or "") else (subject or "")
    body = body or ""
    if _HTML_HINT.search(body):
        body = _html_to_text(body)
    text = "\n".join([subject, *own_lines(body)])
    text = html.unescape(_TAG.sub(" ", text)).translate(_TYPOGRAPHY)
    return "\n".join(" ".join(ln.split()) for ln in text.splitlines() if ln.strip())


# ---------------------------------------------------------------- classify_leave: vocabulary


def _slips(word: str) -> str:
    """The word, or the word with one letter dropped, doubled or swapped: 'postion', 'jobb'."""
    out = {word}
    for i in range(len(word)):
        out |= {word[:i] + word[i + 1:], word[:i] + word[i] + word[i:]}
        if i + 1 < len(word):
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])
    return " ".join(out)


# A few words may sit between verb and noun ("landed my dream role"), never a function word,
# so "got tired of the job" or "found the group helpful in my job search" do not match.
_STOP_EN = _words("""
    of to for in at on from about with by into over that this these those it its and or but no
    not never any what which who because so if when as than through via is was are were be been
    me you him them us he she they we interview interviews call email reply rejection lot lots
    hang tired sick rid nothing anything""")
_STOP_ES = _words("de del en a al con para por que y o pero no sin ningún ningun ninguna ni")
_STOP_FR = _words("""
    de d' des à au aux en pour par avec que qui et ou mais pas ne aucun aucune sans dans sur""")
_FILLER = rf"(?:(?!{_STOP_EN}\b)[\w'-]+\s+){{0,4}}"
_FILLER_ES = rf"(?:(?!{_STOP_ES}\b)[\w'-]+\s+){{0,3}}"
_FILLER_FR = rf"(?:(?!{_STOP_FR}\b)[\w'-]+\s+){{0,3}}"
# Nouns that are about the search, not a job: "job board", "job interview", "offer of admission".
_NOT_AFTER = r"(?!\s*[-/]?\s*" + _any(r"""
    search\w* | hunt\w* | boards? | posting\w* | listing\w* | leads? | alerts? | fairs? | seek\w*
    market | sites? | applications? | interviews? | descriptions? | ads? | club | done | scams?
    tips | advice | titles? | rejections? | training | coach\w* | of admission | to study
    for (?:grad|graduate) school""") + r"\b)"

_JOB = _words(f"""job jobs jbo jobb joob positions role roles gig gigs placement internship contract
                  {_slips("position")} {_slips("employment")}""")
_OFFER = _words(f"offers {_slips('offer')}")
_ACCEPTED = _words(f"took taken excepted {_slips('accepted')}")
_ACQUIRE = _any(f"did get | {_words('got gotten have secured scored snagged nabbed obtained')}"
                f" | {_words(_slips('landed'))}")
_FOUND = _any("have found | found | foud | fuond")
_START = _words("start starting started begin beginning began commence commencing")
_HIRED = _words(f"rehired recruited hird hierd {_slips('hired')}")
_DAY = _words("monday tuesday wednesday thursday friday saturday sunday tomorrow")
# A capitalised name: "Stark Industries".
_COMPANY = r"(?-i:[A-Z])[\w&.'-]*(?: (?-i:[A-Z])[\w&.'-]*)*"


class Rule(NamedTuple):
    """A found-work phrase. subject: its speaker must be the sender. weak: no other reason given."""

    pattern: re.Pattern[str]
    subject: bool
    weak: bool


def _rule(regex: str, subject: bool = True, weak: bool = False) -> Rule:
    return Rule(re.compile(regex, _I), subject, weak)


# ---------------------------------------------------------------- classify_leave: the phrase table

FOUND_WORK: tuple[Rule, ...] = (
    # English: a first-person verb, then a job noun a few words on.
    _rule(rf"\b{_ACQUIRE}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # got a job, landed my dream role
    _rule(rf"\b(?:got|gotten|received|recieved|landed|did get|signed|{_ACCEPTED})\s+{_FILLER}"
          rf"{_OFFER}\b{_NOT_AFTER}"),  # got an offer, accepted a job offer
    _rule(rf"\b{_ACCEPTED}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # accepted a position
    _rule(rf"\b{_FOUND}\s+{_FILLER}(?:{_JOB}|work)\b{_NOT_AFTER}"),  # found work, found employment
    _rule(rf"\b{_START}\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # I start my new role
    _rule(rf"\b(?:was|been|got|were) offered\s+{_FILLER}{_JOB}\b{_NOT_AFTER}"),  # offered the job
    _rule(rf"\boffered me\s+{_FILLER}{_JOB}\b{_NOT_AFTER}", subject=False),
    _rule(rf"\b(?:got|been|was|were|am|'m|im)(?: (?:now|just|finally|officially|been))*"
          rf" {_HIRED}\b"),
    _rule(r"\b(?:am|'m|im)(?: (?:now|finally|officially|gainfully|happily))* employed\b"),
    _rule(rf"^(?:finally |just |now |officially )?(?:{_HIRED}|employed)\b"),  # "Hired! Bye."
    _rule(rf"\b{_HIRED} me\b", subject=False),  # Acme hired me
    _rule(r"\bemployed again\b|\bno longer unemployed\b"),
    _rule(r"\b(?:made|extended|gave|sent) me (?:an?|the|their) (?:\w+ )?offer\b", subject=False),
    _rule(r"\boffer accepted\b", subject=False),
    _rule(r"\b(?:my|the|their) (?:job )?offer (?:finally |officially )?(?:came|has come|come)"
          r" through\b", subject=False),
    _rule(r"\bsigned (?:on )?with (?-i:[A-Z])", weak=True),  # signed with Initech
    _rule(rf"\b{_START} (?:work(?:ing)? )?(?:at|with) (?-i:[A-Z])", weak=True),  # starting at Acme
    _rule(rf"\bi(?:'ll| will)? (?:start|begin)(?: work)?(?: on)? (?:{_DAY}"
          rf"|next (?:week|month|{_DAY})|in (?:a|two|three|four|a few|\d+) (?:days?|weeks?))\b",
          subject=False),  # I start Monday
    _rule(r"\b(?:i'?m|i am|i'll be|i will be|i've) (?:officially |now |going to be )?"
          rf"(?:joining|joined) {_COMPANY}(?= as\b| on\b| next\b| in\b| this\b|[!.]|$)",
          subject=False, weak=True),  # I'm joining Stark Industries as ...
    _rule(r"\b(?:joined|joining) (?:the|a) (?:[\w-]+ )?team (?:at|of) "),  # joined the team at X
    _rule(rf"\b(?:i'll be|i'?m|i am|i will be) (?:heading|moving|going) (?:over )?to {_COMPANY}"
          r"(?: \w+){0,3}? as (?:a|an|the|their|its)\b", subject=False),  # heading to X as a ...
    _rule(r"\b(?:i'?m|i am|i'll|i will)(?: (?:now|going to|gonna|officially))?(?: be)? working "
          r"(?:full[- ]time |part[- ]time )?(?:at|for) ", subject=False),  # I'm now working for X
    _rule(r"\b(?:i'?m|i am) (?:now |finally )?back (?:to|at) work\b", subject=False),
    _rule(r"\b(?:i'?m|i am) (?:now |officially |finally )?(?:a|an) (?:[\w-]+ ){0,3}employee\b",
          subject=False),  # I'm now a full-time employee
    _rule(rf"\bmy new (?:job|role|position|gig|employer|workplace)\b{_NOT_AFTER}", subject=False),
    _rule(rf"^new (?:job|role|position|gig)\b{_NOT_AFTER}"),  # "New job, new city!"
    _rule(r"\bmy first day (?:at|with|is|will be|of work|on the job)\b", subject=False),
    _rule(r"\b(?:my|the) (?:job )?(?:search|hunt) is (?:\w+ )?over\b", subject=False, weak=True),
    _rule(r"\bno longer (?:looking|searching|job[- ]?(?:hunting|seeking|searching))\b"
          r"|\bnot looking anymore\b|\boff the (?:job )?market\b", weak=True),
    # Spanish: the verb's ending already says "I".
    _rule(r"\b(?:encontr[eé]|consegu[ií]|obtuve|he (?:encontrado|conseguido|obtenido)|ya tengo"
          rf"|tengo (?:un )?nuevo)\s+{_FILLER_ES}"
          r"(?:trabajo|empleo|chamba|curro|laburo|puesto|plaza)\b", subject=False),
    _rule(rf"\b(?:acept[eé]|firm[eé]|he (?:aceptado|firmado))\s+{_FILLER_ES}"
          r"(?:oferta|contrato|puesto|trabajo|empleo)\b", subject=False),
    _rule(r"\bme (?:contrataron|han contratado|contrató|acaban de contratar"
          r"|dieron el (?:trabajo|puesto))\b", subject=False),
    _rule(r"\b(?:empiezo|comienzo|empec[eé]|comenc[eé]) (?:a trabajar"
          r"|(?:un|mi) nuevo (?:trabajo|empleo|puesto)|en (?-i:[A-Z])"
          r"|el (?:lunes|martes|miércoles|jueves|viernes)|mañana|la pr[óo]xima semana)",
          subject=False),
    _rule(r"\bmi nuevo (?:trabajo|empleo|puesto)\b", subject=False),
    _rule(r"\bya no (?:estoy )?buscando\b|\bya no busco\b", subject=False, weak=True),
    # French
    _rule(r"\bj'ai (?:enfin |finalement )?(?:trouv[ée]|d[ée]croch[ée]|obtenu|retrouv[ée]|eu"
          rf"|d[ée]nich[ée])\s+{_FILLER_FR}"
          r"(?:emploi|travail|poste|job|boulot|cdi|cdd|contrat|stage)\b", subject=False),
    _rule(rf"\bj'ai (?:enfin |finalement )?(?:accept[ée]|sign[ée])\s+{_FILLER_FR}"
          r"(?:offre|contrat|poste|cdi|cdd|proposition)\b", subject=False),
    _rule(r"\b(?:j'ai été|je suis|je viens d'être) (?:enfin )?(?:embauch|recrut|engag)"
          r"[ée]e?s?\b", subject=False),
    _rule(r"\bje (?:commence|démarre|débute) (?:(?:un|une|mon|ma) (?:nouveau |nouvel |nouvelle )?"
          r"(?:travail|poste|emploi|job|boulot|contrat|cdi)|lundi|mardi|mercredi|jeudi|vendredi"
          r"|demain|la semaine prochaine|le mois prochain|chez (?-i:[A-Z]))", subject=False),
    _rule(r"\bmon nouvel? (?:poste|emploi|travail|job|boulot|employeur)\b", subject=False),
    _rule(r"\bje ne (?:re)?cherche plus\b", subject=False, weak=True),
    # German: "ich habe ... gefunden" with no kein/nicht on the way.
    _rule(r"\bich habe (?:(?!kein|nicht|nie)\w+ ){0,3}(?:job|stelle|arbeit|anstellung|arbeitsstelle"
          r"|festanstellung|position|arbeitsplatz|jobangebot|angebot|arbeitsvertrag|vertrag)\b"
          r"(?:(?!nicht|nie|kein)[^.!?,;]){0,40}?"
          r"\b(?:gefunden|bekommen|erhalten|ergattert|angenommen|unterschrieben)\b", subject=False),
    _rule(r"\bich habe (?:jetzt |nun |endlich |wieder )?(?:eine|einen) neuen? (?:job|stelle|arbeit"
          r"|anstellung|arbeitsstelle|position)\b", subject=False),
    _rule(r"\b(?:ich (?:wurde|bin)|mich) (?:\w+ )?eingestellt\b", subject=False),
    _rule(r"\bich (?:fange|beginne) (?:am|im|ab|nächsten?|morgen|übermorgen|bei|zum)\b"
          r"(?:(?!umschulung|ausbildung|studium|kurs|schule)[^.!?,;]){0,40}\ban\b", subject=False),
    _rule(r"\bich beginne (?:eine neue|einen neuen|meine neue|meinen neuen|bei)\b", subject=False),
    _rule(r"\b(?:meine neue stelle|meinen neuen job|mein neuer job|meine neue arbeit"
          r"|meiner neuen stelle)\b", subject=False),
    _rule(r"\bich suche nicht mehr\b", subject=False, weak=True),
)

# ---------------------------------------------------------------- classify_leave: what cancels it

# A retraction at or after the phrase undoes it ("accepted an offer, but it was rescinded");
# one before it does not ("my last offer fell through, but I got a job").
_VETO = re.compile(r"\b" + _any(r"""
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
    zurückgezogen | abgesagt | geplatzt""") + r"\b", _I)
# Weak phrases ("no longer looking", "started at Columbia") mean nothing beside another reason.
_OTHER_REASON = re.compile(r"\b" + _any(r"""
    retir\w* | school | college | universit\w* | studies | studying | student | stay(?:ing)? home
    stay-at-home | kids | care for | caring for | caregiv\w* | health | giving up | give up
    gave up | burn(?:ed|t)? out | parental leave | maternity | paternity | sabbatical
    master'?s | degree | phd | mba | bootcamp | semester | grad school
    jubilad\w* | retraite | ruhestand | rente""") + r"\b", _I)
_AUTO_REPLY_SUBJECT = re.compile(r"\b" + _any("""
    automatic reply | auto[- ]?reply | autoreply | out of (?:the )?office | abwesenheit\\w*
    automatische antwort | réponse automatique | respuesta automática | ooo""") + r"\b", _I)
_AUTO_REPLY_BODY = re.compile(r"\b" + _any("""
    out of (?:the )?office | limited access to (?:my )?e-?mail | i am currently away
    will respond (?:to your (?:e-?mail|message) )?when i return
    (?:i am|i'm) (?:currently )?(?:away|on vacation|on holiday|on annual leave)
    nicht im büro | abwesend | absente? du bureau | fuera de la oficina""") + r"\b", _I)
# Conditionals, hopes and counterfactuals in the phrase's own clause.
_HYPOTHETICAL = re.compile(r"\b" + _any("""
    if | when | whenever | once | until | till | unless | whether | as soon as
    hope | hoping | hoped | hopefully | wish | wishing | fingers crossed | pray | praying
    would | could | might | should | supposed to | think | thought | almost | nearly | maybe
    perhaps | imagine | love to (?:say|tell you|report)
    si | cuando | ojal[áa] | espero | esperando | hasta que | en cuanto | quiz[áa]s? | tal vez
    quand | lorsque | dès que | j'espère | espère | jusqu'à | peut-être
    wenn | falls | sobald | hoffe | hoffentlich | vielleicht | würde | könnte | bis
""") + r"\b|(?-i:\bmay\b)", _I)  # "may" only in lower case: not the month
_NEGATIONS = frozenset("""
    not no never nor nobody noone none without cannot neither unable failed didnt havent hasnt
    hadnt dont doesnt wasnt werent couldnt cant wont isnt aint nunca jamás sin tampoco ni pas
    jamais ne nicht nie kein keine keinen keiner""".split())
_NEGATED_AFTER = re.compile(r"^[^,.;!?]{0,30}?\b(?:nicht|nie|niemals)\b", _I)  # German verb-last
_FIRST_PERSON = frozenset("i i've ive i'm im i'd i'll we we've we're myself".split())
_THIRD_PERSON = frozenset("""
    he she they he's she's they've they're who you wife husband partner spouse friend friends son
    daughter brother sister mom mum dad mother father colleague coworker roommate boyfriend
    girlfriend fiance fiancé cousin neighbor neighbour everyone someone somebody people members
    member others cohort classmate mine""".split())
_SKIP = frozenset("""
    just finally finaly finnally recently officially actually also now happily successfully
    already have has had been both all really did do am is are was were be will gladly
    thankfully luckily even""".split())
_LEAD_INS = frozenset("""
    so but because cause cuz since as yay woohoo hooray yes well ok okay news update unsubscribe
    please pls thanks lol plus ps today yesterday anyway anyways""".split())
_CLAUSE_BREAK = re.compile(r"[,:;()\[\]\"]|\s[-–—]+\s|\b" + _words("""
    but however though although pero aunque mais cependant aber doch jedoch""") + r"\b", _I)
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!\d\.)\s+|\n+|\s[-–—]+\s")  # "1. März" is no end
_WORD = re.compile(r"[\w']+")


# ---------------------------------------------------------------- classify_leave: the logic


@dataclass(frozen=True)
class LeaveVerdict:
    """Whether a leave request says the sender found work, and the phrase that said so."""

    found_work: bool
    phrase: str | None


def _sentences(text: str) -> Iterator[tuple[int, str]]:
    """(offset, sentence) pairs."""
    start = 0
    for m in _SENTENCE_END.finditer(text):
        yield start, text[start:m.start()]
        start = m.end()
    yield start, text[start:]


def _clause_start(before: str) -> int:
    """Where the clause holding the phrase begins, within the text before it."""
    breaks = list(_CLAUSE_BREAK.finditer(before))
    return breaks[-1].end() if breaks else 0


def _negated(clause: str) -> bool:
    """A negation among the last few words before the phrase ("still haven't found a job")."""
    words = _WORD.findall(clause.lower())[-4:]
    return any(w in _NEGATIONS or w.endswith("n't") or w.startswith("n'") for w in words)


def _sender_is_subject(clause: str) -> bool:
    """The phrase's subject is the sender (or left out), not "my wife" or "Bob who"."""
    words = _WORD.findall(clause.lower())
    while words and words[-1] in _SKIP:
        words.pop()
    if not words or words[-1] in _FIRST_PERSON or words[-1] in _LEAD_INS:
        return True
    if words[-1] in ("and", "&"):  # "I've been offered and accepted", "my wife quit and got a job"
        earlier = [w for w in words if w in _FIRST_PERSON or w in _THIRD_PERSON]
        return not earlier or earlier[-1] in _FIRST_PERSON
    return False


def _counts(rule: Rule, sentence: str, m: re.Match[str], offset: int, vetoes: list[int]) -> bool:
    """Does this match, in its context, say the sender found work?"""
    before = sentence[:m.start()]
    at = _clause_start(before)
    clause = before[at:]
    if before.count('"') % 2:  # inside quotation marks: "I got a job!" posts
        return False
    if any(v >= offset + at for v in vetoes):
        return False
    if _negated(clause) or _NEGATED_AFTER.match(sentence[m.end():]) or _HYPOTHETICAL.search(clause):
        return False
    return not rule.subject or _sender_is_subject(clause)


@lru_cache(maxsize=64)
def _extra_rules(phrases: tuple[str, ...]) -> tuple[Rule, ...]:
    """A list's extra_job_phrases as rules: literal, any speaker, still negatable."""
    return tuple(_rule(rf"(?<!\w){re.escape(p.strip())}(?!\w)", subject=False)
                 for p in phrases if p.strip())


def _is_auto_reply(subject: str, text: str) -> bool:
    """An out-of-office or vacation auto-reply: not the member speaking."""
    return bool(_AUTO_REPLY_SUBJECT.search(subject or "") or _AUTO_REPLY_BODY.search(text))


def classify_leave(subject: str, body: str, extra_phrases: Sequence[str] = ()) -> LeaveVerdict:
    """Does this leave request say the sender found work? Doubt means no.

    >>> classify_leave("unsubscribe", "Please remove me, I got a job at Acme!")
    LeaveVerdict(found_work=True, phrase='got a job')
    >>> classify_leave("unsubscribe", "I still haven't found a job.").found_work
    False
    """
    text = clean_text(subject, body)[:MAX_CLASSIFIED_CHARS]
    if _is_auto_reply(subject, text):
        return LeaveVerdict(False, None)
    rules = FOUND_WORK + _extra_rules(tuple(extra_phrases))
    vetoes = [m.start() for m in _VETO.finditer(text)]
    other_reason = bool(_OTHER_REASON.search(text))
    for offset, sentence in _sentences(text):
        if sentence.rstrip().endswith("?"):
            continue
        for rule in rules:
            if rule.weak and other_reason:
                continue
            for m in rule.pattern.finditer(sentence):
                if _counts(rule, sentence, m, offset, vetoes):
                    return LeaveVerdict(True, m.group(0).strip())
    return LeaveVerdict(False, None)


# ---------------------------------------------------------------- classify_topic: the alumni pulse

_ROLE = _words("""
    engineer developer designer manager analyst scientist nurse accountant writer intern
    specialist coordinator consultant administrator architect lead director recruiter technician
    assistant associate candidate programmer teacher driver clerk representative rep marketer
    editor paralegal bookkeeper""") + "s?"
TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (topic, re.compile(pattern, _I | re.M)) for topic, pattern in (
        ("hiring", _any(r"""
            \b(?:is|are|'re|now|currently|actively|still) hiring\b | ^\s*hiring\b(?! freeze)
            \bhiring (?:for|a|an|two|three|several|multiple|junior|senior|\d+)\b
            \bjob (?:openings?|postings?|opportunit(?:y|ies))\b
            \b(?:open|new) (?:positions?|roles?|reqs?|headcount)\b
            \bpositions? (?:available|open)\b
            \b(?:have|has|got) (?:an|two|a few|several) openings?\b | \bopenings? (?:for|on|at|in)\b
            \breferrals?\b | \b(?:happy to|can|could) refer\b | \brecruiting (?:for|a|an)\b
            \bapply (?:here|now|online|by)\b""")),
        ("hiring", rf"\blooking for (?:an?|two|several) (?:[\w-]+ ){{0,2}}{_ROLE}\b"
                   r"(?!\s+(?:position|role|job|opening))"),  # not "a manager position": a seeker
        ("hiring", _any(r"""
            \bestamos contratando\b | \bvacantes?\b | \bofertas? de (?:empleo|trabajo)\b
            \bse busca\b
            \bnous recrutons\b | \bon recrute\b | \bpostes? à pourvoir\b | \boffres? d'emploi\b
            \bwir stellen ein\b | \bstellenangebote?\b | \bwir suchen (?:eine?n?|ab sofort)\b
            \boffene stellen?\b""")),
        ("layoff", _any(r"""
            \blaid off\b | \blay-?offs?\b | \b(?:was|were|been|got|being) let go\b
            \blost (?:my|his|her|their|our) jobs?\b | \bjob loss(?:es)?\b
            (?-i:\bRIF(?:s|'d|ed)?\b)
            \breduction in force\b | \bdownsiz(?:ed|ing)\b | \bfurlough(?:ed|s)?\b
            \bredundanc(?:y|ies)\b | \bmade redundant\b | \bjob cuts\b | \bcutting (?:\d+ )?jobs\b
            \brestructuring\b | \bWARN notice\b
            \b(?:position|role|job|team|department)s? (?:was |were |got )?eliminated\b
            \b(?:position|role|job|team|department)s? (?:has|have) been eliminated\b
        """)),
        ("layoff", _any(r"""
            \bdespid(?:o|os|ieron|ido|ida)\b | \bme echaron\b | \brecortes? de personal\b
            \bperd[ií] mi (?:trabajo|empleo)\b | \blicenci(?:é|ée|és|ées|ement|ements)\b
            \bplan social\b | \bsuppressions? de postes?\b | \bperdu mon (?:emploi|travail|poste)\b
            \bentlassen\b | \bentlassungen?\b | \bstellenabbau\b | \bgekündigt\b
            \bkündigungswelle\b
        """)),
    )
)


def classify_topic(subject: str, body: str) -> str | None:
    """'hiring', 'layoff' or None for a post; more hits win, then the earlier one.

    >>> classify_topic("Acme is hiring", ""), classify_topic("", "I was laid off.")
    ('hiring', 'layoff')
    >>> print(classify_topic("Coffee on Tuesday?", ""))
    None
    """
    subject = _REPLY_SUBJECT.sub("", subject or "")
    text = "\n".join([subject, clean_text("", body)])[:MAX_CLASSIFIED_CHARS]
    hits: dict[str, list[int]] = {}
    for topic, pattern in TOPICS:
        for m in pattern.finditer(text):
            before = text[:m.start()]
            if not _negated(before[_clause_start(before):]):  # "we are not hiring", "no layoffs"
                hits.setdefault(topic, []).append(m.start())
    if not hits:
        return None
    return max(hits, key=lambda t: (len(hits[t]), -min(hits[t])))


# ---------------------------------------------------------------- is_unsubscribe_request: rule 5

_COMMAND = _any(r"""
    unsubscribe | unsub | remove | leave | stop | opt[ -]?out | sign ?off | cancel
    d[ée]sabonner | d[ée]sinscription | d[ée]sabonnement | baja | darme de baja
    abmelden | abmeldung | austragen""")
UNSUBSCRIBE: tuple[re.Pattern[str], ...] = tuple(re.compile(p, _I) for p in (
    # a whole line that is the command: "unsubscribe", "Remove me please."
    rf"^(?:please |pls |kindly )?{_COMMAND}(?: (?:me|please|pls|now|thanks|thank you"
    r"|from (?:this|the) list|this address))*[\s.!]*$",
    # a line that starts with the command and gives a reason: "unsubscribe - got a job"
    r"^(?:please |pls |kindly )?(?:unsubscribe|unsub)\b(?! (?:link|button|url|page|option"
    r"|instructions|process|footer|feature|header|function)s?\b)",
    _any(r"""
        \bunsubscribe me\b | \bopt me out\b | \bcancel my (?:subscription|membership)\b
        \b(?:please|pls|plz|kindly|can you|could you) (?:\w+ )?unsubscribe\b
        \b(?:please|pls|plz|kindly|can you|could you) (?:\w+ )?(?:remove me|take me off)\b
        \b(?:remove|delete|drop|take|get) me (?:off|from|out of)\b
        \bremove (?:my|this) (?:e-?mail|address)\b
        \bstop (?:sending|emailing|mailing) me\b | \bno more e-?mails\b
        \b(?:i'?d like|i would like|i want|i wish) to (?:unsubscribe|be removed|opt out)\b
        \b(?:i'?d like|i would like|i want|i wish) to leave (?:this|the) (?:list|group)\b"""),
    _any(r"""
        \bd[ée]sabonn(?:er|ez|e)\b | \bd[ée]sinscri(?:re|vez|s|ption)\b
        \bme retirer de (?:la|cette) liste\b | \bretirez-moi\b
        \b(?:darme|darse|dar) de baja\b | \bdenme de baja\b | \bdesuscribir(?:me)?\b
        \bcancelar (?:mi )?suscripci[óo]n\b
        \b(?:quitarme|qu[ií]tenme|sacarme|s[áa]quenme) de (?:la|esta) lista\b
        \b(?:eliminarme|elim[ií]nenme|borrarme|b[óo]rrenme) de (?:la|esta) lista\b
        \babmelden\b | \babbestellen\b | \baustragen\b | \btragt mich aus\b
        \bmeldet mich\b.{0,30}\bab\b
        \b(?:aus dem|vom) verteiler\b | \bvon der liste (?:nehmen|streichen|entfernen)\b"""),
))
# Talk about unsubscribing rather than a request: how-to questions, someone else, "why do people".
_NOT_A_REQUEST = re.compile(_any(r"""
    \bhow (?:do|can|would|should|to)\b | \bwhy (?:do|did|are|is|would)\b
    \bunsubscribe (?:my (?!(?:e-?mail|address|account|self)\b)|him\b|her\b|them\b|someone|others)
    \bunsubscribe (?:people|everyone|a member|members)\b
    \bremove (?:him|her|them|my (?:colleague|friend|coworker|boss|wife|husband|partner))\b"""), _I)


def is_unsubscribe_request(subject: str, body: str) -> bool:
    """A short, command-like post to the list address that really asks to leave (SPEC rule 5).

    >>> is_unsubscribe_request("unsubscribe", "")
    True
    >>> is_unsubscribe_request("", "How do I unsubscribe?")
    False
    """
    text = clean_text(subject, body)
    if not text or len(text.split()) > MAX_UNSUBSCRIBE_WORDS or _NOT_A_REQUEST.search(text):
        return False
    for line in text.splitlines():
        for pattern in UNSUBSCRIBE:
            for m in pattern.finditer(line):
                clause = line[:m.start()][_clause_start(line[:m.start()]):]
                if not _negated(clause) and not _HYPOTHETICAL.search(clause):  # "please don't ..."
                    return True
    return False

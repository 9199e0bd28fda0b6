"""Shared grammar for the retention classifiers: clauses, negation and hypotheticals."""

from __future__ import annotations

import re

from listserv.text import any_of, words_of

_I = re.IGNORECASE
MAX_CLASSIFIED_CHARS = 8_000  # the sender's words past this decide nothing; bounds the work

# Conditionals, hopes and counterfactuals in the phrase's own clause.
HYPOTHETICAL = re.compile(
    r"\b"
    + any_of("""
    if | when | whenever | once | until | till | unless | whether | as soon as
    hope | hoping | hoped | hopefully | wish | wishing | fingers crossed | pray | praying
    would | could | might | should | supposed to | think | thought | almost | nearly | maybe
    perhaps | imagine | love to (?:say|tell you|report)
    si | cuando | ojal[áa] | espero | esperando | hasta que | en cuanto | quiz[áa]s? | tal vez
    quand | lorsque | dès que | j'espère | espère | jusqu'à | peut-être
    wenn | falls | sobald | hoffe | hoffentlich | vielleicht | würde | könnte | bis
""")
    + r"\b|(?-i:\bmay\b)",
    _I,
)  # "may" only in lower case: not the month
NEGATIONS = frozenset(
    """
    not no never nor nobody noone none without cannot neither unable failed didnt havent hasnt
    hadnt dont doesnt wasnt werent couldnt cant wont isnt aint nunca jamás sin tampoco ni pas
    jamais ne nicht nie kein keine keinen keiner""".split()
)
CLAUSE_BREAK = re.compile(
    r"[,:;()\[\]\"]|\s[-–—]+\s|\b"
    + words_of("""
    but however though although pero aunque mais cependant aber doch jedoch""")
    + r"\b",
    _I,
)
WORD = re.compile(r"[\w']+")


def clause_start(before: str) -> int:
    """Where the clause holding the phrase begins, within the text before it."""
    breaks = list(CLAUSE_BREAK.finditer(before))
    return breaks[-1].end() if breaks else 0


def negated(clause: str) -> bool:
    """A negation among the last few words before the phrase ("still haven't found a job")."""
    words = WORD.findall(clause.lower())[-4:]
    return any(w in NEGATIONS or w.endswith("n't") or w.startswith("n'") for w in words)

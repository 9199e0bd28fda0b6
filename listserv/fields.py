"""Pure helpers for fields of work (issue 13): the built-in set, name matching, post tagging."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence

from listserv.text import clean_text, strip_markers

# A list without a [lists.NAME.fields] table gets these; an empty table turns fields off.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Healthcare": ("nurse", "nursing", "hospital", "clinic", "medical", "patient", "pharmacy"),
    "Software & IT": ("developer", "software", "devops", "IT", "programmer", "sysadmin"),
    "Education": ("teacher", "teaching", "school", "tutor", "university", "curriculum"),
    "Finance & Accounting": ("accountant", "accounting", "bookkeeper", "finance", "bank", "audit"),
    "Sales & Marketing": ("sales", "marketing", "account executive", "SEO", "advertising"),
    "Manufacturing": ("manufacturing", "factory", "assembly line", "machinist", "production"),
    "Logistics & Transport": ("warehouse", "logistics", "forklift", "driver", "shipping", "CDL"),
    "Retail & Hospitality": ("retail", "restaurant", "hotel", "cashier", "barista"),
    "Construction & Trades": ("construction", "electrician", "plumber", "carpenter", "welder"),
    "Engineering": ("engineer", "engineering", "mechanical engineer", "civil engineer"),
    "Office & Administration": ("admin", "administrative", "receptionist", "office manager"),
    "Government & Nonprofit": ("government", "nonprofit", "non-profit", "public sector", "grant"),
}
NONE_WORDS = ("none", "clear", "no field", "off")
MAX_TAGGED_CHARS = 20000


def normalised(name: str) -> str:
    """A field name as compared: lower case, '&' read as 'and', punctuation and spaces gone.

    >>> normalised("Software & IT"), normalised("software and it")
    ('softwareandit', 'softwareandit')
    """
    return re.sub(r"[\W_]+", "", name.lower().replace("&", "and"))


def match_field(text: str, fields: Mapping[str, Sequence[str]]) -> str | None:
    """The field a member named: exact (any case), a unique start or word, or a close spelling.

    >>> F = {"Healthcare": ["nurse"], "Software & IT": ["developer"]}
    >>> match_field("helthcare", F), match_field("software", F), match_field("IT", F)
    ('Healthcare', 'Software & IT', 'Software & IT')
    >>> print(match_field("farming", F))
    None
    """
    want = normalised(text)
    if not want:
        return None
    names = {normalised(n): n for n in fields}
    if want in names:
        return names[want]
    for candidates in (
        [n for k, n in names.items() if k.startswith(want) and len(want) >= 3],
        [n for n in fields if want in (normalised(w) for w in re.split(r"[\s&/,]+", n))],
        [n for n, words in fields.items() if want in (normalised(w) for w in words)],
    ):
        if len(candidates) == 1:
            return candidates[0]
    close = difflib.get_close_matches(want, list(names), n=1, cutoff=0.75)
    return names[close[0]] if close else None


def _alternative(keyword: str) -> str:
    # An all-capitals keyword ("IT", "CDL") is an acronym: matched in capitals only, so "it"
    # in a sentence does not tag a post as Software & IT.
    word = rf"{re.escape(keyword)}(?:s|es)?"
    return word if keyword.isupper() else f"(?i:{word})"


def _pattern(words: Sequence[str]) -> re.Pattern[str]:
    """One pattern for all of a field's keywords: a search each, not one per keyword."""
    return re.compile(rf"(?<!\w)(?:{'|'.join(_alternative(k) for k in words)})(?!\w)")


def compile_fields(fields: Mapping[str, Sequence[str]]) -> list[tuple[str, re.Pattern[str]]]:
    """Each field with its keyword pattern, in the config's order (compiled once per table)."""
    return list(_compiled(tuple((name, tuple(words)) for name, words in fields.items())))


@functools.lru_cache(maxsize=32)
def _compiled(
    fields: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    found = []
    for name, words in fields:
        keywords = [k for k in (name, *words) if k.strip()]
        if keywords:
            found.append((name, _pattern(keywords)))
    return tuple(found)


def tag_fields(subject: str, body: str, fields: Mapping[str, Sequence[str]]) -> list[str]:
    """The fields a post's own words name (quotes and signatures removed), in config order.

    >>> tag_fields("Re: hi", "Our hospital is hiring nurses.\\n\\n> a developer job", DEFAULT_FIELDS)
    ['Healthcare']
    """
    text = "\n".join([strip_markers(subject or ""), clean_text("", body)])[:MAX_TAGGED_CHARS]
    return [name for name, pattern in compile_fields(fields) if pattern.search(text)]


def join_tags(tags: Sequence[str]) -> str:
    """Tags as stored on a post: one per line ('' when none)."""
    return "\n".join(tags)


def split_tags(stored: str) -> list[str]:
    return [t for t in stored.split("\n") if t]

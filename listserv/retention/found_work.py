"""Did a member who asks to leave find work? Rules and a learned scorer (RETENTION.md).

No I/O here beyond reading the shipped weights once: text in, values out. The rules keep what
they do well (auto-replies are never the member; a list's extra_job_phrases count unless
negated; "not looking anymore" is asked) and tell the scorer what they saw: a phrase that
counts, or one cancelled by negation, a hypothetical, a retraction or another speaker. The
scorer decides, with a high threshold: a false "found work" keeps someone on a list they asked
to leave (SPEC section 5), while an unsure answer only asks them.
"""

from __future__ import annotations

from collections.abc import Sequence

from listserv.retention.grammar import MAX_CLASSIFIED_CHARS
from listserv.retention.rules import RuleSignals, extra_phrase_hit, rule_signals
from listserv.retention.scorer import shipped_model
from listserv.retention.verdict import LeaveOutcome, LeaveVerdict
from listserv.text import clean_text

__all__ = ["LeaveOutcome", "LeaveVerdict", "classify_leave", "decide", "leave_probability"]


SHORT_WORDS = 8  # at most this many words, the rules decide (cross-validated by writer)
# Up to this many words a clean found-work phrase is believed whatever the scorer says ("please
# remove me from this list, I got a job", SPEC rule 5's own example). Cross-validated by writer
# over train + dev (20 writers, pooled precision 0.98): recall 0.815 against 0.810 without it,
# precision 0.979 against 0.980. SHORT_WORDS (33 writers): 5 -> recall 0.853, precision 0.979;
# 8 -> 0.850, 0.980; 10 cost 0.012 recall. 8 keeps "I found the job board more useful" the rules'.
RULE_FIRST_WORDS = 15


def leave_probability(subject: str, body: str) -> float:
    """The scorer's probability that the sender found work (0 for an auto-reply)."""
    text = clean_text(subject, body)[:MAX_CLASSIFIED_CHARS]
    signals = rule_signals(subject, text)
    return 0.0 if signals.auto_reply else shipped_model().probability(text, signals)


def decide(scored: LeaveOutcome, signals: RuleSignals, text: str) -> LeaveOutcome:
    """The scorer's outcome, with the rules' last word where they are the more reliable (also
    used by bench/train_retention.py to cross-validate the whole decision)."""
    if signals.auto_reply:  # RETENTION.md rule 12: out-of-office is never the member speaking
        return LeaveOutcome.OTHER
    words = len(text.split())
    if words <= SHORT_WORDS or (signals.rejected and words <= RULE_FIRST_WORDS):
        # "Hired! Bye.", or a phrase the rules saw cancelled ("I thought I'd landed a job"):
        # too few words for the scorer to outweigh them
        if signals.verdict.outcome == LeaveOutcome.OTHER and scored == LeaveOutcome.FOUND_WORK:
            return LeaveOutcome.UNSURE  # the scorer's hunch is asked, never switched
        return signals.verdict.outcome
    if signals.verdict.found_work and words <= RULE_FIRST_WORDS:
        return LeaveOutcome.FOUND_WORK
    if scored == LeaveOutcome.OTHER and signals.verdict.unsure:
        return LeaveOutcome.UNSURE  # rule 9: "done with the hunt" is asked, never dropped
    return scored


def classify_leave(subject: str, body: str, extra_phrases: Sequence[str] = ()) -> LeaveVerdict:
    """Does this leave request say the sender found work? Doubt means unsure or no.

    >>> classify_leave("unsubscribe", "Please remove me, I got a job at Acme!")
    LeaveVerdict(outcome=<LeaveOutcome.FOUND_WORK: 'found_work'>, phrase='got a job')
    >>> classify_leave("unsubscribe", "I still haven't found a job.").found_work
    False
    """
    text = clean_text(subject, body)[:MAX_CLASSIFIED_CHARS]
    signals = rule_signals(subject, text)
    if signals.auto_reply:  # RETENTION.md rule 12: out-of-office is never the member speaking
        return LeaveVerdict(LeaveOutcome.OTHER, None)
    extra = extra_phrase_hit(text, extra_phrases)
    if extra:
        return LeaveVerdict(LeaveOutcome.FOUND_WORK, extra)
    model = shipped_model()
    outcome = decide(model.outcome(model.probability(text, signals)), signals, text)
    if outcome == LeaveOutcome.OTHER:
        return LeaveVerdict(outcome, None)
    phrase = signals.verdict.phrase if signals.verdict.outcome != LeaveOutcome.OTHER else None
    return LeaveVerdict(outcome, phrase or model.deciding_words(text))

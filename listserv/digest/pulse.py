"""The alumni pulse, pure: figures per period, small counts masked, trend words, sparklines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

Trend = Literal["up", "down", "flat"]
SPARKS = "▁▂▃▄▅▆▇█"
TREND_PERIODS = 6  # the sparkline spans this many periods, the current one last


@dataclass(frozen=True)
class PeriodCounts:
    """One period's figures, for the whole group or for one field."""

    joined: int
    job_leaves: int
    hiring_posts: int
    layoff_posts: int
    backs: int = 0  # alumni and digest members who came back looking (a layoff signal)

    def __add__(self, other: PeriodCounts) -> PeriodCounts:
        return PeriodCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(PeriodCounts))
        )


ZERO = PeriodCounts(0, 0, 0, 0, 0)

# (PeriodCounts field, label): what each figure means for someone job hunting.
GROUP_PULSE = (
    ("joined", "People who joined (often a sign of layoffs)"),
    ("job_leaves", "Members who left because they found work (a sign of hiring)"),
    ("backs", "Members who came back looking again (a sign of layoffs)"),
    ("hiring_posts", "Posts about hiring"),
    ("layoff_posts", "Posts about layoffs"),
)
FIELD_PULSE = (
    ("hiring_posts", "Hiring posts in your field"),
    ("layoff_posts", "Layoff posts in your field"),
    ("job_leaves", "Members in your field who found work"),
    ("joined", "New members in your field (often a sign of layoffs)"),
)


@dataclass(frozen=True)
class PulseLine:
    label: str
    shown_now: str  # 'none' | 'fewer than 3' | '12'
    shown_before: str
    trend: Trend
    spark: str = ""  # six periods, oldest first, as a text sparkline
    bar_now: int = 0  # bar lengths in percent for the HTML part (masked like the text)
    bar_before: int = 0

    def sentence(self, now_word: str, before_word: str) -> str:
        """'12 this month, up from 5 last month' (the text and HTML parts say the same)."""
        now = self.shown_now[:1].upper() + self.shown_now[1:]
        if self.trend == "flat":
            return f"{now} {now_word}, about the same as {before_word} ({self.shown_before})"
        return f"{now} {now_word}, {self.trend} from {self.shown_before} {before_word}"


def pulse_lines(
    current: PeriodCounts,
    previous: PeriodCounts,
    history: Sequence[PeriodCounts] = (),
    table: Sequence[tuple[str, str]] = GROUP_PULSE,
) -> list[PulseLine]:
    """Each figure now and before, small counts masked, its trend and its sparkline.

    history is the last periods oldest first, ending with current (default: previous, current).
    """
    periods = list(history) or [previous, current]
    lines = []
    for name, label in table:
        now, before = getattr(current, name), getattr(previous, name)
        # The trend compares what the reader sees: "fewer than 3" against "none" is no change.
        seen_now, seen_before = _visible(now), _visible(before)
        trend: Trend = (
            "up" if seen_now > seen_before else "down" if seen_now < seen_before else "flat"
        )
        top = max(seen_now, seen_before)
        lines.append(
            PulseLine(
                label,
                _shown(now),
                _shown(before),
                trend,
                sparkline([getattr(p, name) for p in periods]),
                round(100 * seen_now / top) if top else 0,
                round(100 * seen_before / top) if top else 0,
            )
        )
    return lines


def sparkline(values: Sequence[int]) -> str:
    """Counts as bars, small counts masked like the text (a count under 3 shows as none).

    >>> sparkline([0, 3, 6, 12, 2, 9])
    '▁▃▅█▁▆'
    """
    seen = [_visible(v) for v in values]
    top = max(seen, default=0)
    if not top:
        return SPARKS[0] * len(seen)
    return "".join(SPARKS[round(v / top * (len(SPARKS) - 1))] for v in seen)


def _shown(n: int) -> str:
    if n < 0:
        raise ValueError(f"a count cannot be negative (got {n})")
    return "none" if n == 0 else "fewer than 3" if n < 3 else str(n)


def _visible(n: int) -> int:
    return n if n >= 3 else 0

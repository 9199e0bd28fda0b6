"""`listserv stats NAME [--months N] [--json]`: is retention working? (issue 13)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from listserv.cli import common
from listserv.cli.common import (
    ConfigOpt,
    JsonOpt,
    ListArg,
    app,
    config_from,
    guarded,
    out,
    print_json,
    print_table,
    store_for,
)
from listserv.errors import UsageError
from listserv.store import stats

LABELS = {
    "joins": "joined",
    "leaves": "left",
    "job_leaves": "left for a job",
    "alumni_switches": "stayed as alumni",
    "alumni_left": "alumni who left",
    "backs": "came back",
    "hiring_posts": "hiring posts",
    "layoff_posts": "layoff posts",
    "regular": "every post",
    "digest": "digest",
    "alumni": "alumni",
}
BAR = 24  # the longest bar, in characters


@app.command("stats")
@guarded
def stats_command(
    name: ListArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    months: Annotated[int, typer.Option(help="How many months back, this one included.")] = 6,
) -> None:
    """Per month: joins, leaves, job leaves, alumni switches and full leaves, comebacks,
    hiring and layoff posts, and the members by delivery mode."""
    if not 1 <= months <= 120:
        raise UsageError(f"--months {months} must be between 1 and 120")
    cfg = config_from(config)
    lst = cfg.list(name)
    with store_for(cfg).session() as s:
        rows = stats.monthly(s, lst.name, common.now(), ZoneInfo(cfg.server.timezone), months)
    if as_json:
        print_json(rows)
        return
    print_table(("month", *LABELS.values()), [(r["month"], *(r[k] for k in LABELS)) for r in rows])
    if out.is_terminal:
        out.print(chart(rows))


def chart(rows: list[dict]) -> Table:
    """Bars per month: how many left for a job, stayed as alumni and came back."""
    table = Table("month", "figure", "", title="Retention at a glance", show_lines=False)
    top = max(
        [r[k] for r in rows for k in ("joins", "job_leaves", "alumni_switches", "backs")] + [1]
    )
    styles = {"joins": "cyan", "job_leaves": "green", "alumni_switches": "blue", "backs": "yellow"}
    for r in rows:
        for i, (key, style) in enumerate(styles.items()):
            bar = "█" * round(BAR * r[key] / top) if r[key] else ""
            table.add_row(r["month"] if i == 0 else "", LABELS[key], f"[{style}]{bar}[/] {r[key]}")
    return table

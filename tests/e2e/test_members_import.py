"""`listserv members import`: every export format through the CLI, in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from typer.testing import CliRunner

from listserv.cli import app
from listserv.config import load_config
from listserv.store import open_store
from listserv.store.tables import Delivery, Event, Member
from tests.conftest import config_text

DATA = Path(__file__).parent.parent / "data" / "imports"
runner = CliRunner()


def run(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "listserv.toml"
    path.write_text(config_text(database=f"sqlite:///{tmp_path / 'listserv.db'}"))
    return path


def import_file(conf: Path, path: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = run("members", "import", "networking", path, "--config", conf, *extra)
    assert result.exit_code == 0, result.output
    return result


def rows(conf: Path) -> dict[str, tuple[str, str]]:
    """address -> (status, delivery) for every member of networking, any status."""
    result = run("members", "list", "networking", "--json", "--config", conf)
    assert result.exit_code == 0, result.output
    return {m["address"]: (m["status"], m["delivery"]) for m in json.loads(result.stdout)}


def db_rows(conf: Path, query):  # type: ignore[no-untyped-def]
    store = open_store(load_config(conf).database_url)
    try:
        with store.session() as s:
            return list(s.exec(query))
    finally:
        store.dispose()


def queued_to(conf: Path) -> list[str]:
    return [d.recipient for d in db_rows(conf, select(Delivery))]


ACTIVE, DISABLED, LEFT = "active", "disabled", "left"
SAMPLES = {
    "google_groups.csv": (
        [],
        {
            "aisha.rahman@example.com": (ACTIVE, "regular"),
            "bram.devries@example.net": (ACTIVE, "digest"),
            "carla@example.org": (ACTIVE, "digest"),  # abridged
            "dev.patel@example.com": (DISABLED, "regular"),  # bouncing
            "eve.stone@example.com": (DISABLED, "regular"),  # no email
            "gary.oneil@example.net": (LEFT, "regular"),  # banned
        },
        [8, 10],
    ),
    "groupsio.csv": (
        [],
        {
            "aisha.rahman@example.com": (ACTIVE, "regular"),
            "bram.devries@example.net": (ACTIVE, "digest"),
            "carla@example.org": (ACTIVE, "digest"),
            "dev.patel@example.com": (ACTIVE, "digest"),  # daily summary
            "eve.stone@example.com": (DISABLED, "regular"),  # special notices only
            "farah.k@example.co.uk": (DISABLED, "regular"),  # no email
            "gary.oneil@example.net": (DISABLED, "regular"),  # bouncing
            "hana.kim@example.org": (LEFT, "regular"),  # banned
        },
        [10, 11],
    ),
    "listserv.csv": (
        [],
        {
            "aisha.rahman@example.com": (ACTIVE, "regular"),
            "bram.devries@example.net": (ACTIVE, "digest"),
            "carla@example.org": (ACTIVE, "alumni"),
            "dev.patel@example.com": (DISABLED, "regular"),
            "farah.k@example.co.uk": (ACTIVE, "regular"),
        },
        [6, 8],
    ),
    "mailman2_digest.txt": (
        ["--delivery", "digest"],
        {
            "eve.stone@example.com": (ACTIVE, "digest"),
            "gary.oneil@example.net": (ACTIVE, "digest"),
            "hana.kim@example.org": (ACTIVE, "digest"),
        },
        [3],
    ),
    "mailman2_list_members.txt": (
        [],
        {
            a: (ACTIVE, "regular")
            for a in (
                "aisha.rahman@example.com",
                "bram.devries@example.net",
                "carla@example.org",
                "eve.stone@example.com",
                "gary.oneil@example.net",
                "hana.kim@example.org",
            )
        },
        [5],
    ),
    "mailman2_regular.txt": (
        [],
        {
            a: (ACTIVE, "regular")
            for a in ("aisha.rahman@example.com", "bram.devries@example.net", "carla@example.org")
        },
        [],
    ),
    "mailman3_members.txt": (
        [],
        {
            a: (ACTIVE, "regular")
            for a in (
                "aisha.rahman@example.com",
                "bram.devries@example.net",
                "wei.chen@example.org",
                "dolores@example.com",
                "farah.k@example.co.uk",
                "grace@example.edu",
                "hiro.tanaka@example.jp",
                "ingrid.svensson@example.se",
            )
        },
        [5],
    ),
    "mailman3_postorius.csv": (
        [],
        {
            a: (ACTIVE, "regular")
            for a in (
                "aisha.rahman@example.com",
                "bram.devries@example.net",
                "wei.chen@example.org",
                "dolores@example.com",
                "farah.k@example.co.uk",
            )
        },
        [5],
    ),
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_every_sample_export_imports_with_its_statuses_and_deliveries(conf, sample):
    """Each shipped format is detected and lands with the status and delivery its modes mean."""
    extra, expected, _bad = SAMPLES[sample]
    result = import_file(conf, DATA / sample, *extra)
    assert rows(conf) == expected
    assert f"{len(expected)} new" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(f"read {len(expected)} member")


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_bad_rows_are_reported_on_stderr_by_file_and_line(conf, sample):
    """Every unusable line shows as FILE:LINE: problem on stderr and is counted in the summary."""
    extra, _expected, bad = SAMPLES[sample]
    path = DATA / sample
    result = import_file(conf, path, *extra)
    reported = [
        int(n)
        for n in re.findall(rf"^{re.escape(str(path))}:(\d+): .*; skipped$", result.stderr, re.M)
    ]
    assert reported == bad
    summary = result.stdout.strip().splitlines()[-1]
    assert (f"{len(bad)} bad row" in summary) == bool(bad)


def test_a_given_format_overrides_detection(conf, tmp_path):
    """--format reads a file whose name and lines would be taken for another format."""
    path = tmp_path / "people.csv"  # a .csv of bare addresses is detected as Postorius
    path.write_text("ann@example.com\nbob@example.net\n")
    result = import_file(conf, path, "--format", "mailman2")
    assert "Mailman 2" in result.stdout
    assert rows(conf) == {
        "ann@example.com": (ACTIVE, "regular"),
        "bob@example.net": (ACTIVE, "regular"),
    }


def test_an_unknown_format_name_exits_2(conf):
    """--format must be one of the formats we read."""
    result = run(
        "members",
        "import",
        "networking",
        DATA / "listserv.csv",
        "--config",
        conf,
        "--format",
        "majordomo",
    )
    assert result.exit_code == 2 and "mailman2" in result.stderr


def test_a_file_of_no_known_format_exits_2_with_the_formats_named(conf, tmp_path):
    """A file we can't place says which formats --format takes."""
    path = tmp_path / "notes.txt"
    path.write_text("call Ann on Monday\nbring the sign-up sheet\n")
    result = run("members", "import", "networking", path, "--config", conf)
    assert result.exit_code == 2 and "groupsio" in result.stderr


def test_reimporting_the_same_file_changes_nothing(conf):
    """A second import of the same file finds everyone already there: no row, token or event moves."""
    path = DATA / "groupsio.csv"
    import_file(conf, path)
    members_before = db_rows(conf, select(Member).order_by(col(Member.address)))
    events_before = db_rows(conf, select(func.count()).select_from(Event))
    again = import_file(conf, path)
    assert "0 new, 0 re-activated; 8 already there" in again.stdout
    after = db_rows(conf, select(Member).order_by(col(Member.address)))
    assert [m.model_dump() for m in after] == [m.model_dump() for m in members_before]
    assert db_rows(conf, select(func.count()).select_from(Event)) == events_before


def test_every_imported_member_has_its_own_token_and_a_join_event(conf):
    """Each new member gets a unique 160-bit token and a 'join' event with reason 'imported'."""
    import_file(conf, DATA / "mailman3_members.txt")
    tokens = [m.token for m in db_rows(conf, select(Member))]
    assert len(tokens) == 8 and len(set(tokens)) == 8
    assert all(re.fullmatch(r"[0-9a-f]{40}", t) for t in tokens)
    joins = db_rows(conf, select(Event.address, Event.kind, Event.reason))
    assert sorted(a for a, _k, _r in joins) == sorted(rows(conf))
    assert {(k, r) for _a, k, r in joins} == {("join", "imported")}


def test_a_banned_member_is_recorded_as_left_and_never_mailed(conf):
    """A row the export marks banned is kept as left with the reason, so no post reaches them."""
    import_file(conf, DATA / "google_groups.csv")
    (gary,) = db_rows(conf, select(Member).where(col(Member.address) == "gary.oneil@example.net"))
    assert gary.status == LEFT and "banned" in gary.left_reason and gary.left_at is not None
    kinds = db_rows(conf, select(Event.kind).where(col(Event.address) == gary.address))
    assert kinds == ["leave"]


def test_a_former_member_is_reactivated_with_their_token(conf, tmp_path):
    """An address that left is brought back (counted as re-activated) and keeps its token; a live
    one is already there."""
    result = run(
        "members",
        "add",
        "networking",
        "ann@example.com",
        "bob@example.net",
        "--no-welcome",
        "--config",
        conf,
    )
    assert result.exit_code == 0, result.output
    assert (
        run("members", "remove", "networking", "ann@example.com", "--config", conf).exit_code == 0
    )
    (before,) = db_rows(conf, select(Member.token).where(col(Member.address) == "ann@example.com"))
    path = tmp_path / "people.csv"
    path.write_text("address,name,delivery\nann@example.com,Ann,digest\nbob@example.net,Bob,\n")
    result = import_file(conf, path)
    assert "0 new, 1 re-activated; 1 already there" in result.stdout
    (ann,) = db_rows(conf, select(Member).where(col(Member.address) == "ann@example.com"))
    assert (ann.status, ann.delivery, ann.name, ann.token) == (ACTIVE, "digest", "Ann", before)
    assert ann.left_at is None and ann.left_reason == ""


def test_import_sends_no_welcome_mail_by_default(conf):
    """Without --welcome nothing is queued for the imported members."""
    import_file(conf, DATA / "mailman2_list_members.txt")
    assert queued_to(conf) == []


def test_welcome_queues_one_welcome_mail_per_new_active_member(conf):
    """--welcome queues the welcome mail to each member imported as active, not to the
    disabled or left ones."""
    import_file(conf, DATA / "google_groups.csv", "--welcome")
    assert sorted(queued_to(conf)) == [
        "aisha.rahman@example.com",
        "bram.devries@example.net",
        "carla@example.org",
    ]
    again = import_file(conf, DATA / "google_groups.csv", "--welcome")
    assert "6 already there" in again.stdout and len(queued_to(conf)) == 3


@pytest.fixture
def count_statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    yield seen
    event.remove(Engine, "before_cursor_execute", count)


def test_twenty_thousand_rows_stream_in_batches(conf, tmp_path, count_statements):
    """20,000 generated rows are all imported with a few statements per thousand, not per row."""
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("address,name,delivery\n")
        for i in range(20_000):
            fh.write(f"user{i:05d}@example.net,User {i},{'digest' if i % 10 == 0 else 'regular'}\n")
    result = import_file(conf, path)
    assert "20000 new, 0 re-activated; 0 already there" in result.stdout
    assert "18000 regular, 2000 digest" in result.stdout
    writes = [st for st in count_statements if st.lstrip().upper().startswith("INSERT")]
    assert 0 < len(writes) < 200
    (n,) = db_rows(conf, select(func.count()).select_from(Member))
    assert n == 20_000


def test_import_into_postgresql(pg_cluster, tmp_path):  # noqa: F811
    """On PostgreSQL the same batches insert, re-activate and skip: a former member comes back,
    a re-import finds everyone there."""
    url = pg_cluster.fresh_database(f"import_{uuid.uuid4().hex[:12]}")
    conf = tmp_path / "listserv.toml"
    conf.write_text(config_text(database=url))
    first = import_file(conf, DATA / "groupsio.csv")
    assert "8 new" in first.stdout
    assert rows(conf) == SAMPLES["groupsio.csv"][1]
    assert (
        run("members", "remove", "networking", "carla@example.org", "--config", conf).exit_code == 0
    )
    again = import_file(conf, DATA / "groupsio.csv", "--welcome")
    assert "0 new, 1 re-activated; 7 already there" in again.stdout
    assert rows(conf) == SAMPLES["groupsio.csv"][1]
    assert queued_to(conf) == ["carla@example.org"]
    joins = db_rows(
        conf, select(func.count()).select_from(Event).where(col(Event.reason) == "imported")
    )
    assert joins == [8]


def test_an_address_added_meanwhile_is_already_there_and_keeps_its_token(tmp_path, monkeypatch):
    """A member who joins between import_batch's lookup and its insert is counted as already
    there: no second row, their token and state untouched, no 'imported' event."""
    from datetime import UTC, datetime

    from listserv.imports import ImportRow
    from listserv.store import members

    store = open_store(f"sqlite:///{tmp_path / 'race.db'}")
    now = datetime.now(UTC)
    with store.session() as s:
        joined = members.upsert_member(s, "networking", "ann@example.com", now, status="active")
        token = joined.token
    monkeypatch.setattr(members, "_statuses", lambda s, list_name, addresses: {})
    batch = [ImportRow(1, "ann@example.com", "Ann"), ImportRow(2, "bob@example.net", "Bob")]
    with store.session() as s:
        done = members.import_batch(s, "networking", batch, now)
    assert (done.added, done.reactivated, done.already) == (
        ["bob@example.net"],
        [],
        ["ann@example.com"],
    )
    with store.session() as s:
        ann = members.get_member(s, "networking", "ann@example.com")
        assert ann is not None and ann.token == token and ann.name == ""
        reasons = list(s.exec(select(Event.address).where(col(Event.reason) == "imported")))
    assert reasons == ["bob@example.net"]
    store.dispose()


def test_imported_no_mail_members_are_never_probed_back_on(conf):
    """Bounce maintenance leaves members imported as disabled alone: no probe mail, and they
    stay disabled weeks later (a probe that got through would turn their mail back on)."""
    from datetime import UTC, datetime, timedelta

    from listserv.bounces import score
    from listserv.config import Site

    import_file(conf, DATA / "groupsio.csv")
    cfg = load_config(conf)
    store = open_store(cfg.database_url)
    try:
        for day in range(0, 28, 1):
            with store.session() as s:
                when = datetime.now(UTC) + timedelta(days=day)
                score.maintain(s, cfg.lists["networking"], Site.of(cfg.server), when)
    finally:
        store.dispose()
    assert queued_to(conf) == []
    disabled = sorted(a for a, (status, _d) in rows(conf).items() if status == DISABLED)
    assert disabled == ["eve.stone@example.com", "farah.k@example.co.uk", "gary.oneil@example.net"]


def test_a_file_that_is_not_utf8_exits_2_saying_how_to_convert_it(conf, tmp_path):
    """A Latin-1 export is refused with the iconv line to fix it, not a traceback."""
    path = tmp_path / "list_members.txt"
    path.write_bytes("José Núñez <jose@example.com>\n".encode("latin-1"))
    result = run("members", "import", "networking", path, "--config", conf)
    assert result.exit_code == 2 and "iconv" in result.stderr


def test_import_reads_a_field_column_and_gives_the_rest_the_field_option(conf, tmp_path):
    """A 'field' column names each member's field (close spellings ok); --field fills the rest;
    a field the list does not have is reported and the member imported without one."""
    path = tmp_path / "fields.csv"
    path.write_text(
        "address,field\n"
        "ann@example.com,Helthcare\n"
        "bob@example.net,\n"
        "cy@example.org,Underwater basket weaving\n"
    )
    result = import_file(conf, path, "--field", "education")
    assert "fields.csv:4: field 'Underwater basket weaving' is not one of" in result.output
    listed = run("members", "list", "networking", "--json", "--config", conf)
    fields = {m["address"]: m["field"] for m in json.loads(listed.stdout)}
    assert fields["ann@example.com"] == "Healthcare"
    assert fields["bob@example.net"].lower().startswith("education")
    assert fields["cy@example.org"] == ""

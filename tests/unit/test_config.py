"""Config loading: defaults, relative paths, the example file, and reload keeping a good config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from listserv.config import load_config, parse_config
from listserv.errors import ConfigError
from tests.conftest import config_text, make_config

REPO = Path(__file__).resolve().parents[2]


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    """database, secret_file, pid_file and the outbox relay are relative to the config's folder."""
    folder = tmp_path / "etc"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)  # not the config folder
    cfg = make_config(folder)
    assert cfg.database_url == f"sqlite:///{folder.resolve() / 'var' / 'listserv.db'}"
    assert cfg.resolve(cfg.server.secret_file) == folder / "var" / "secret"
    assert cfg.resolve(cfg.server.pid_file) == folder / "var" / "listserv.pid"
    assert cfg.resolve("/abs/outbox") == Path("/abs/outbox")


def test_load_config_gives_an_absolute_path_for_a_relative_file(tmp_path, monkeypatch):
    """A config named relative to the working directory still resolves paths beside itself."""
    (tmp_path / "listserv.toml").write_text(config_text())
    monkeypatch.chdir(tmp_path)
    cfg = load_config("listserv.toml")
    assert cfg.path.is_absolute()
    assert cfg.resolve("var/secret") == tmp_path / "var" / "secret"


def test_defaults_fill_everything_not_set(tmp_path):
    """A minimal file gets the documented defaults for the server and for each list."""
    path = tmp_path / "min.toml"
    path.write_text('[lists.networking]\nowners = ["Owner@Example.org"]\n')
    cfg = load_config(path)
    server = cfg.server
    assert server.domain == "lists.example.org"
    assert server.listen == "127.0.0.1:8025" and server.protocol == "smtp"
    assert server.max_message_bytes == 10 * 1024 * 1024
    assert server.retry_seconds == 5 * 86400 and server.retry_initial_seconds == 30
    assert server.sender_auth == "dkim" and server.postmaster == ()
    lst = cfg.list("networking")
    assert lst.name == "networking" and lst.owners == ("owner@example.org",)
    assert (lst.posting, lst.nonmember_posts, lst.subscription, lst.reply_to) == (
        "members",
        "hold",
        "confirm",
        "list",
    )
    assert lst.prefix == "[networking] " and lst.display_title == "networking"
    assert lst.digest.schedule == "0 8 * * mon" and lst.alumni.on_job_leave == "alumni"


def test_list_lookup_ignores_case_and_names_the_known_lists(cfg):
    """cfg.list('NETWORKING') finds the list; an unknown name is a ConfigError listing the real ones."""
    assert cfg.list("NETWORKING").name == "networking"
    with pytest.raises(ConfigError, match="networking"):
        cfg.list("nosuch")


def test_example_config_validates():
    """config.example.toml at the repo root loads without errors."""
    cfg = load_config(REPO / "config.example.toml")
    assert "networking" in cfg.lists
    assert cfg.server.relay.startswith("outbox:")


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[server]\nmax_message_bytes = "big"\n', "server.max_message_bytes = 'big'"),
        ('[server]\nlistenn = "x"\n', "server.listenn is not a known setting"),
        ('[lists.a]\nowners = ["not an address"]\n', "lists.a.owners"),
        ('[lists.a.digest]\nschedule = "every monday"\n', "lists.a.digest.schedule"),
        ("[lists.a]\n[lists.A]\n", "same list"),
        ("[server\n", "not valid TOML"),
        ('[server]\nsender_auth = "spf"\n', "server.sender_auth"),
        ('[server]\nsender_auth = "mta:"\n', "'mta:AUTHSERV-ID'"),
        ('[server]\npostmaster = ["nobody"]\n', "server.postmaster"),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path, snippet, expected):
    """Each kind of mistake is a ConfigError naming the file and the key path."""
    path = tmp_path / "bad.toml"
    path.write_text(snippet)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    """A config path that does not exist is reported as such, not as a traceback."""
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_parsed_config_is_frozen(cfg):
    """Config is data loaded once: models cannot be changed in place."""
    with pytest.raises(ValidationError):
        cfg.server.domain = "other.example"  # type: ignore[misc]


async def test_reload_with_a_bad_file_keeps_the_old_config(tmp_path):
    """Server.reload() refuses a broken file (old config kept) and picks up a good change."""
    from listserv.server import Server

    cfg = make_config(tmp_path)
    srv = Server(cfg)
    try:
        cfg.path.write_text(cfg.path.read_text() + "\n[lists.broken]\nposting = 42\n")
        srv.reload()
        assert srv.cfg is cfg
        good = (
            config_text(list_extra='posting = "open"\n', name="networking")
            + '\n[lists.jobs]\nowners = ["owner@example.org"]\n'
        )
        cfg.path.write_text(good)
        srv.reload()
        assert srv.cfg is not cfg
        assert srv.cfg.lists["networking"].posting == "open"
        assert set(srv.cfg.lists) == {"networking", "jobs"}
    finally:
        srv.store.dispose()


def test_parse_config_accepts_the_test_template(tmp_path):
    """The fixtures' config text is itself valid (1s retries, sink relay)."""
    cfg = parse_config(config_text(relay="smtp://127.0.0.1:2525"), tmp_path / "x.toml")
    assert cfg.server.retry_initial_seconds == 1
    assert cfg.server.relay == "smtp://127.0.0.1:2525"


def test_fields_default_to_the_built_in_set_and_an_empty_table_turns_them_off():
    """No [lists.X.fields]: the built-in dozen; {} : none; a table: exactly its fields."""
    from listserv.fields import DEFAULT_FIELDS

    text = '[lists.a]\n[lists.b.fields]\n[lists.c.fields]\n"Healthcare" = ["nurse"]\n'
    cfg = parse_config(text, Path("x.toml"))
    assert list(cfg.lists["a"].field_table) == list(DEFAULT_FIELDS) and len(DEFAULT_FIELDS) == 12
    assert cfg.lists["b"].field_table == {}
    assert cfg.lists["c"].field_table == {"Healthcare": ("nurse",)}


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('"none" = []', "'none' cannot be a field name"),
        ('"Health care" = []\n"healthcare" = []', "are the same field"),
        ('"Healthcare" = "nurse"', "lists.a.fields.Healthcare = 'nurse' is not a list"),
        ('"Healthcare" = [""]', "empty or unprintable keyword"),
    ],
)
def test_check_config_names_a_bad_fields_table(table, says):
    """A bad fields table is refused with the key path and what is wrong."""
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_config(f"[lists.a.fields]\n{table}\n", Path("x.toml"))

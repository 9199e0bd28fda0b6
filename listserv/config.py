"""Load the one TOML file into frozen pydantic models; errors name file, key path and problem."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from listserv.addresses import SUFFIXES, is_valid_address
from listserv.errors import ConfigError
from listserv.fields import DEFAULT_FIELDS, NONE_WORDS, normalised

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9._]*$")


def parse_duration(text: str) -> int:
    """Seconds in a duration like '5d', '12h', '30m'.

    >>> parse_duration("5d")
    432000
    """
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like '30m', '12h' or '5d'")
    return int(m.group(1)) * _UNITS[m.group(2)]


def check_cron(text: str) -> str:
    """Validate a five-field cron string, as APScheduler reads it."""
    if len(text.split()) != 5:
        raise ValueError(f"{text!r} is not a cron string with five fields like '0 8 * * mon'")
    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid cron string ({exc})") from None
    return text


def _list_to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DigestConfig(_Model):
    schedule: str = "0 8 * * mon"
    format: Literal["mime", "plain"] = "mime"

    _cron = field_validator("schedule")(classmethod(lambda cls, v: check_cron(v)))


class AlumniConfig(_Model):
    enabled: bool = True
    schedule: str = "0 8 1 * *"
    on_job_leave: Literal["alumni", "ask", "leave"] = "alumni"
    highlights: int = Field(default=5, ge=0, le=50)
    extra_job_phrases: StrTuple = ()

    _cron = field_validator("schedule")(classmethod(lambda cls, v: check_cron(v)))


class ListConfig(_Model):
    name: str = ""  # filled from the table key
    title: str = ""
    description: str = ""
    owners: StrTuple = ()
    moderators: StrTuple = ()
    posting: Literal["members", "open", "moderated", "announce"] = "members"
    nonmember_posts: Literal["hold", "reject", "discard"] = "hold"
    subscription: Literal["confirm", "approve", "closed"] = "confirm"
    subject_prefix: str | None = None
    reply_to: Literal["list", "sender"] = "list"
    archive_url: str = ""
    dmarc: Literal["munge", "wrap", "none"] = "munge"
    max_replies_per_day: int = Field(default=10, ge=0)
    bounce_threshold: float = Field(default=5, gt=0)
    bounce_warnings: int = Field(default=3, ge=0)
    bounce_score_reset_days: int = Field(default=7, ge=1)
    digest: DigestConfig = DigestConfig()
    alumni: AlumniConfig = AlumniConfig()
    # None: the built-in fields; {}: fields are off (issue 13).
    fields: dict[str, StrTuple] | None = None

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, tuple[str, ...]] | None) -> dict | None:
        if value is None:
            return None
        seen: dict[str, str] = {}
        for name, words in value.items():
            key = normalised(name)
            if not key or len(name) > 60 or not name.isprintable():
                raise ValueError(f"field name {name!r} must be a short line with a letter in it")
            if name.lower() in NONE_WORDS:
                raise ValueError(f"{name!r} cannot be a field name: 'field {name}' clears a field")
            if key in seen:
                raise ValueError(f"fields {seen[key]!r} and {name!r} are the same field")
            seen[key] = name
            for word in words:
                if not word.strip() or not word.isprintable():
                    raise ValueError(f"field {name!r} has an empty or unprintable keyword {word!r}")
        return value

    @property
    def field_table(self) -> dict[str, tuple[str, ...]]:
        """The list's fields and their keywords: the configured ones, else the built-in set."""
        return dict(DEFAULT_FIELDS) if self.fields is None else dict(self.fields)

    @field_validator("owners", "moderators")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for addr in value:
            if not is_valid_address(addr):
                raise ValueError(f"{addr!r} is not an email address like 'owner@example.org'")
        return tuple(a.strip().lower() for a in value)

    @property
    def prefix(self) -> str:
        """The subject prefix: the configured one, or '[name] '."""
        return f"[{self.name}] " if self.subject_prefix is None else self.subject_prefix

    @property
    def display_title(self) -> str:
        return self.title or self.name


class ServerConfig(_Model):
    domain: str = "lists.example.org"
    listen: str = "127.0.0.1:8025"
    protocol: Literal["smtp", "lmtp"] = "smtp"
    database: str = "sqlite:///var/listserv.db"
    relay: str = "outbox:var/outbox"
    http_listen: str = "127.0.0.1:8080"
    base_url: str = "http://127.0.0.1:8080"
    timezone: str = "UTC"
    secret_file: str = "var/secret"
    pid_file: str = "var/listserv.pid"
    max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    retry_for: str = "5d"
    retry_initial: str = "30s"
    delivery_connections: int = Field(default=4, ge=1, le=64)
    claim_lease: str = "2m"  # how long another instance waits before taking over a claimed copy
    token_days: int = Field(default=7, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    auto_upgrade: bool = False  # serve upgrades an older database schema at start
    helo_name: str = ""  # the name listserv greets its relay with; '' = domain
    sender_auth: str = "dkim"  # dkim | mta:AUTHSERV-ID | none (SPEC 5, issue 10)
    postmaster: StrTuple = ()  # where postmaster@ goes; empty: the owners of every list

    @field_validator("sender_auth")
    @classmethod
    def _sender_auth(cls, v: str) -> str:
        kind, sep, ident = v.strip().partition(":")
        kind = kind.strip().lower()
        if (kind in ("dkim", "none") and not sep) or (kind == "mta" and ident.strip()):
            return v.strip()
        raise ValueError(f"{v!r} is not 'dkim', 'mta:AUTHSERV-ID' (your MTA's id) or 'none'")

    @field_validator("postmaster")
    @classmethod
    def _postmaster(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for addr in value:
            if not is_valid_address(addr):
                raise ValueError(f"{addr!r} is not an email address like 'admin@example.org'")
        return tuple(a.strip().lower() for a in value)

    # Bounded work per message (issue 10): checked while receiving, before the 250.
    max_header_bytes: int = Field(default=256 * 1024, gt=0)
    max_header_fields: int = Field(default=1000, gt=0)
    max_line_bytes: int = Field(default=998, ge=998)  # RFC 5322 2.1.1, without the CRLF
    max_mime_depth: int = Field(default=30, gt=0, le=100)
    max_mime_parts: int = Field(default=1000, gt=0)
    # A message that fails to be handled is tried this many times (backoff from
    # inbound_retry, doubling), then parked and reported to the owners.
    inbound_attempts: int = Field(default=5, ge=1)
    inbound_retry: str = "30s"

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not is_valid_address(f"x@{v}"):
            raise ValueError(f"{v!r} is not a domain name like 'lists.example.org'")
        return v.lower()

    @field_validator("listen", "http_listen")
    @classmethod
    def _hostport(cls, v: str) -> str:
        split_hostport(v)
        return v

    @field_validator("retry_for", "retry_initial", "claim_lease", "inbound_retry")
    @classmethod
    def _retry(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not a time zone name like 'UTC' or 'Europe/Berlin'"
            ) from None
        return v

    @field_validator("relay")
    @classmethod
    def _relay(cls, v: str) -> str:
        if not (v.startswith("outbox:") or v.startswith("smtp://") or v.startswith("smtps://")):
            raise ValueError(
                f"{v!r} is not a relay like 'smtp://127.0.0.1:25' or 'outbox:var/outbox'"
            )
        return v

    @property
    def inbound_retry_seconds(self) -> int:
        return parse_duration(self.inbound_retry)

    @property
    def retry_seconds(self) -> int:
        return parse_duration(self.retry_for)

    @property
    def retry_initial_seconds(self) -> int:
        return parse_duration(self.retry_initial)

    @property
    def claim_lease_seconds(self) -> int:
        return parse_duration(self.claim_lease)


@dataclass(frozen=True)
class Site:
    """What every message the server builds needs to know about it: its domain and public URL."""

    domain: str
    base_url: str

    @classmethod
    def of(cls, server: ServerConfig) -> Site:
        return cls(domain=server.domain, base_url=server.base_url.rstrip("/"))

    def url(self, kind: str, token: str) -> str:
        """A member's page: 'u' (unsubscribe), 'c' (confirm), 'a' (stay as alumni)."""
        return f"{self.base_url}/{kind}/{token}"


class Config(_Model):
    server: ServerConfig = ServerConfig()
    lists: dict[str, ListConfig] = {}
    path: Path = Path("listserv.toml")

    @model_validator(mode="after")
    def _names(self) -> Config:
        seen: dict[str, str] = {}
        for key in self.lists:
            low = key.lower()
            if not _LIST_NAME.match(low):
                raise ValueError(f"list name {key!r} may use only letters, digits, '.' and '_'")
            if low in seen:
                raise ValueError(
                    f"lists {seen[low]!r} and {key!r} are the same list (names ignore case)"
                )
            seen[low] = key
        for low in seen:
            for other in seen:
                for suffix in SUFFIXES:
                    if low == f"{other}-{suffix}":
                        raise ValueError(
                            f"list name {low!r} clashes with the {suffix!r} address of list {other!r}"
                        )
        return self

    @property
    def site(self) -> Site:
        return Site.of(self.server)

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p)

    @property
    def database_url(self) -> str:
        url = self.server.database
        prefix = "sqlite:///"
        if (
            url.startswith(prefix)
            and not url.startswith("sqlite:////")
            and url != "sqlite:///:memory:"
        ):
            return prefix + str(self.resolve(url[len(prefix) :]).resolve())
        return url

    def list(self, name: str) -> ListConfig:
        """The list called name (any case); ConfigError naming the known lists otherwise."""
        lst = self.lists.get(name.lower())
        if lst is None:
            known = ", ".join(sorted(self.lists)) or "none configured"
            raise ConfigError(f"there is no list called {name!r} (known lists: {known})")
        return lst


def split_hostport(text: str) -> tuple[str, int]:
    """'127.0.0.1:8025' -> ('127.0.0.1', 8025); '[::1]:25' -> ('::1', 25)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"{text!r} is not a host:port like '127.0.0.1:8025'")
    return host.strip("[]"), int(port)


def _where(loc: tuple) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-after")]
    return ".".join(parts)


def _lookup(data: dict, loc: tuple) -> object:
    cur: object = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            return None
    return cur


_TYPE_WORDS = {
    "string_type": "is not a string (put it in quotes)",
    "int_type": "is not a whole number",
    "int_parsing": "is not a whole number",
    "float_type": "is not a number",
    "bool_type": "is not true or false",
    "dict_type": "is not a table",
    "tuple_type": 'is not a list like ["a", "b"]',
}


def _describe(err: Mapping[str, Any], data: dict) -> str:
    loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
    where = _where(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{where} is not a known setting (check the spelling against config.example.toml)"
    msg = err["msg"].removeprefix("Value error, ")
    if not where:
        return msg
    value = _lookup(data, loc)
    shown = f" = {value!r}" if value is not None else ""
    if kind in _TYPE_WORDS:
        return f"{where}{shown} {_TYPE_WORDS[kind]}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{where}{shown} must be one of {expected}"
    if kind == "value_error" and value is not None:
        return f"{where}: {msg}"
    return f"{where}{shown}: {msg}" if where else msg


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML text; raise ConfigError naming the file, the key path and what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    lists = data.get("lists", {})
    if isinstance(lists, dict):
        lists = {
            k: (dict(v, name=k.lower()) if isinstance(v, dict) else v) for k, v in lists.items()
        }
        data = dict(data, lists=lists)
    try:
        return Config.model_validate(dict(data, path=path))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {_describe(first, data)}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate the config file at path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file; copy config.example.toml to start") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror})") from None
    return parse_config(text, p.absolute())

"""Bounce scores: one point per bouncing day, disable past the threshold, probe weekly, re-enable."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from listserv.bounces.parse import is_bounce_like, parse_bounce, verp_member
from listserv.config import Config, ListConfig, Site
from listserv.message import parse
from listserv.notices import notice
from listserv.states import EventKind, MemberStatus
from listserv.store import members, outbound
from listserv.store.outbound import Claimed
from listserv.store.tables import Member

log = logging.getLogger("listserv.bounces.score")

PROBE_GRACE = timedelta(days=3)  # a probe with no bounce this long after it re-enables
PROBE_EVERY = timedelta(days=7)
# A bounce counts only for a copy sent within this time: MTAs give up after about 5 days.
SENT_WITHIN = timedelta(days=14)


def handle_bounce(
    s: Session, lst: ListConfig, site: Site, raw: bytes, detail: str, now: datetime
) -> None:
    """Mail to NAME-bounces[+ENCODED]@: score every member it names; never answered."""
    msg = parse(raw)
    report = parse_bounce(msg)
    if detail and not report.addresses and not is_bounce_like(msg):
        log.info(
            "%s: mail to a VERP bounce address that is no bounce (an auto-reply?); dropped",
            lst.name,
        )
        return
    if detail:  # VERP: the encoded member is the one who bounced, whatever the DSN says
        address = verp_member(detail)
        if address is None:
            log.info("%s: bounce to an undecodable VERP address %r dropped", lst.name, detail)
            return
        temporary_only = bool(report.temporary) and not report.permanent
        failures = {address: not temporary_only}
    else:
        failures = {a: False for a in report.temporary} | {a: True for a in report.permanent}
    if not failures:
        log.info(
            "%s: a message to the bounce address named no failing recipient; dropped", lst.name
        )
    for address, permanent in failures.items():
        member = members.get_member(s, lst.name, address)
        if member is None or member.status == MemberStatus.LEFT:
            log.info("%s: bounce for %s, who is not a member; dropped", lst.name, address)
        elif not outbound.sent_to(s, lst.name, address, now - SENT_WITHIN):
            log.info(
                "%s: bounce for %s, to whom nothing was sent; forged? dropped", lst.name, address
            )
        elif not permanent:
            members.log_event(
                s, lst.name, address, EventKind.BOUNCE_TEMPORARY, "delayed delivery", now
            )
        else:
            score(s, lst, site, member, now, "bounce message")


def score(
    s: Session, lst: ListConfig, site: Site, member: Member, now: datetime, reason: str
) -> None:
    """Add one point per bouncing day, after forgetting stale ones; disable at the threshold."""
    today = now.date()
    if member.last_bounce_on == today:
        return
    if (
        member.last_bounce_on
        and (today - member.last_bounce_on).days >= lst.bounce_score_reset_days
    ):
        member.bounce_score = 0.0
    member.bounce_score += 1
    member.last_bounce_on = today
    s.add(member)
    members.log_event(
        s,
        lst.name,
        member.address,
        EventKind.BOUNCE,
        f"{reason}; score {member.bounce_score:g}",
        now,
    )
    if member.status == MemberStatus.ACTIVE and member.bounce_score >= lst.bounce_threshold:
        disable(s, lst, site, member, now, reason)


def disable(
    s: Session, lst: ListConfig, site: Site, member: Member, now: datetime, last_error: str
) -> None:
    member.status = MemberStatus.DISABLED
    member.disabled_at = now
    member.probes_sent = 0
    member.last_probe_at = None
    s.add(member)
    members.log_event(
        s, lst.name, member.address, EventKind.DISABLED, "bounce score reached the threshold", now
    )
    notice(s, lst, site, member.address, "member/disabled.txt", now, member=member)
    notice(
        s,
        lst,
        site,
        lst.owners,
        "admin/bounce_report.txt",
        now,
        member=member,
        last_error=last_error,
    )


def delivery_failed(s: Session, cfg: Config, item: Claimed, error: str, permanent: bool) -> None:
    """The relay refused a copy (5xx) or we gave up retrying: count it, tell the owners."""
    list_name = outbound.outbound_list(s, item.outbound_id)
    lst = cfg.lists.get(list_name) if list_name else None
    if lst is None:
        return
    site = cfg.site
    member = (
        s.get(Member, item.member_id)
        if item.member_id
        else members.get_member(s, lst.name, item.recipient)
    )
    now = datetime.now(UTC)
    if permanent and member is not None and member.status != MemberStatus.LEFT:
        score(s, lst, site, member, now, f"relay refused: {error}")
    if not permanent:
        notice(
            s,
            lst,
            site,
            lst.owners,
            "admin/delivery_failed.txt",
            now,
            recipient=item.recipient,
            error=error,
        )


def maintain(s: Session, lst: ListConfig, site: Site, now: datetime) -> None:
    """Daily: forget stale scores, probe disabled members weekly, re-enable the ones that work."""
    q = select(Member).where(Member.list_name == lst.name, Member.bounce_score > 0)
    for member in s.exec(q):
        if (
            member.status == MemberStatus.ACTIVE
            and member.last_bounce_on
            and (now.date() - member.last_bounce_on).days >= lst.bounce_score_reset_days
        ):
            member.bounce_score = 0.0
            s.add(member)
    disabled = select(Member).where(  # only those bounces disabled: an imported no-mail member
        Member.list_name == lst.name,  # chose it, and a probe would turn their mail back on
        Member.status == MemberStatus.DISABLED,
        col(Member.disabled_at).is_not(None),
    )
    for member in s.exec(disabled):
        probe_clean = member.last_probe_at is not None and (
            member.last_bounce_on is None or member.last_bounce_on < member.last_probe_at.date()
        )
        if probe_clean and now - member.last_probe_at >= PROBE_GRACE:  # type: ignore[operator]
            members.activate(s, member, now, "a probe was delivered without bouncing")
        elif member.last_probe_at is None or now - member.last_probe_at >= PROBE_EVERY:
            if member.probes_sent >= lst.bounce_warnings:
                members.remove(s, member, now, "mail to this address kept bouncing")
                continue
            member.probes_sent += 1
            member.last_probe_at = now
            s.add(member)
            notice(s, lst, site, member.address, "member/probe.txt", now, member=member)

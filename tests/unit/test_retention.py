"""Tests for listserv.retention: cleaning, found-work, topics and list-address unsubscribes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listserv.message import first_text, parse
from listserv.retention import (
    LeaveOutcome,
    LeaveVerdict,
    classify_leave,
    classify_topic,
    is_unsubscribe_request,
)
from listserv.retention.evaluate import evaluate, figure, load, writer, writer_files
from listserv.retention.found_work import leave_probability
from listserv.retention.scorer import BITS, shipped_model
from listserv.text import clean_text

CORPUS = Path(__file__).parents[1] / "data" / "leave_corpus.jsonl"


def found(body: str, subject: str = "Unsubscribe", extra: tuple[str, ...] = ()) -> bool:
    return classify_leave(subject, body, extra).found_work


# ---------------------------------------------------------------- clean_text


def test_clean_text_drops_quoted_lines_and_attribution_with_everything_below():
    """'>' lines go; an 'On ... wrote:' attribution (even wrapped) goes with all below it."""
    body = (
        "unsubscribe\n\nOn Mon, Jun 3, 2024 at 10:12 AM Dana <\ndana@example.com> wrote:\n"
        "I got a job!\n> me too"
    )
    assert clean_text("", body) == "unsubscribe"
    assert clean_text("", "stop\n> I got a job!\ntoo many emails") == "stop\ntoo many emails"


def test_clean_text_drops_outlook_original_message_and_header_blocks():
    """Outlook's '-----Original Message-----' and bare 'From: ... Sent: ...' blocks are quotes."""
    original = (
        "Remove me.\n\n-----Original Message-----\nFrom: a@x.org\nSent: Monday\n\nI landed a job"
    )
    header = (
        "Remove me.\n\nFrom: Tom <tom@x.org>\nSent: Thursday, March 14, 2024\n"
        "To: list@x.org\n\nI got the job!"
    )
    assert clean_text("", original) == "Remove me."
    assert clean_text("", header) == "Remove me."


@pytest.mark.parametrize(
    "attribution",
    [
        "El lun, 4 mar 2024 a las 10:00, Lista <l@x.org> escribió:",
        "Le mar. 5 mars 2024 à 09:12, Liste <l@x.org> a écrit :",
        "Am 05.03.2024 um 09:12 schrieb Liste <l@x.org>:",
    ],
)
def test_clean_text_drops_localised_attributions(attribution):
    """Spanish, French and German reply attributions cut the quote like the English one."""
    body = f"Bitte abmelden.\n\n{attribution}\nIch habe einen Job gefunden!"
    assert clean_text("", body) == "Bitte abmelden."


def test_clean_text_drops_signature_below_delimiter_and_sign_off():
    """'-- ' and a short sign-off block are signature, not the sender's words."""
    assert clean_text("", "Remove me\n-- \nJane\nSenior Engineer, Acme") == "Remove me"
    signed = "Remove me\n\nThanks,\nRaj Patel\nCareer Coach | helping you land a role"
    assert clean_text("", signed) == "Remove me"


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Get Outlook for Android",
        "Enviado desde mi iPhone",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Sent from my Samsung Galaxy smartphone.",
    ],
)
def test_clean_text_drops_mobile_footers(footer):
    """Mobile client footers in several languages are removed."""
    assert clean_text("", f"Got a job! Remove me.\n\n{footer}") == "Got a job! Remove me."


def test_clean_text_strips_html_tags_entities_and_quoted_blocks():
    """Tags and entities go; HTML blockquotes and Gmail quote divs count as quoted text."""
    body = (
        '<div dir="ltr">Bye&nbsp;all &mdash; I&#39;m off</div>'
        "<blockquote>I got hired</blockquote>"
        '<div class="gmail_quote">On Wed ... wrote: I got a job</div>'
    )
    assert clean_text("", body) == "Bye all — I'm off"


def test_clean_text_drops_nested_and_unclosed_blockquotes():
    """Nested blockquotes vanish whole; an unclosed one runs to the end."""
    nested = "<p>a</p><blockquote>q<blockquote>qq</blockquote>q</blockquote><p>b</p>"
    assert clean_text("", nested) == "a\nb"
    assert clean_text("", "<p>bye</p><blockquote>I got a job") == "bye"


def test_clean_text_drops_reply_subject_but_keeps_own_subject():
    """A 'Re:' subject is someone else's words; a fresh subject is the sender's."""
    assert clean_text("Re: I landed a new position", "unsubscribe") == "unsubscribe"
    assert clean_text("Unsubscribe - got a job", "") == "Unsubscribe - got a job"


def test_clean_text_normalises_whitespace_and_typographic_quotes():
    """Runs of spaces collapse, blank lines vanish, curly apostrophes become straight."""
    cleaned = clean_text("  Hi  there ", "\n\n  I\u2019ve   been\thired \n\n")
    assert cleaned == "Hi there\nI've been hired"


# ---------------------------------------------------------------- classify_leave: found work


@pytest.mark.parametrize(
    "body",
    [
        "I got a job!",
        "Landed a new position at Acme.",
        "I accepted an offer last week.",
        "Starting at Acme on Monday!",
        "I've been hired by the county.",
        "I signed my offer letter yesterday.",
        "My first day at Northwind is Tuesday.",
        "I start my new role on the 3rd.",
        "I finally found employment.",
        "got the gig!!",
        "Acme hired me!",
        "They made me an offer and I said yes.",
        "I'm joining Stark Industries as an engineer.",
        "I'm employed again!",
        "I start Monday.",
        "Hired! Please remove me.",
        "I'm now working for the state as a case manager.",
    ],
)
def test_common_found_work_phrasings_are_found_work(body):
    """The everyday ways members say they found work all count."""
    assert found(body)


def test_verdict_carries_the_matched_phrase_for_the_event_log():
    """The verdict names the phrase that decided it; a miss carries None."""
    verdict = classify_leave("unsubscribe", "Please remove me, I landed a job at Acme")
    assert verdict == LeaveVerdict(LeaveOutcome.FOUND_WORK, "landed a job")
    assert classify_leave("unsubscribe", "too many emails") == LeaveVerdict(
        LeaveOutcome.OTHER, None
    )


def test_reason_in_subject_alone_counts():
    """'Unsubscribe - new job' with an empty body is enough."""
    assert found("", subject="Unsubscribe - new job")
    assert found("Please unsubscribe me.", subject="Got a job!")


@pytest.mark.parametrize(
    "body",
    [
        "I got a jbo! please remove me",
        "Landed a postion at a dental office.",
        "I accpeted an offer from a bank.",
        "finaly got a new jobb, pls take me off",
        "I have excepted a job offer with Acme.",
        "i got hried at walmart lol",
    ],
)
def test_common_typos_still_count_as_found_work(body):
    """A dropped, doubled or swapped letter in the key words is tolerated."""
    assert found(body)


# ---------------------------------------------------------------- classify_leave: not found work


@pytest.mark.parametrize(
    "body",
    [
        "I still haven't found a job, but the emails are too much.",
        "I didn't get the job at Acme.",
        "Not hired, not even an interview.",
        "No luck finding a job here.",
        "never got a job from these leads",
        "I have not found employment.",
        "Nobody has hired me in a year.",
        "Haven't gotten a single offer in 9 months.",
    ],
)
def test_negated_job_phrase_is_not_found_work(body):
    """Negations before the phrase cancel it."""
    assert not found(body)


@pytest.mark.parametrize(
    "body",
    [
        "I accepted an offer in May, but the offer was rescinded.",
        "My offer fell through last week.",
        "I got a job offer but turned it down.",
        "They offered me a position but then withdrew the offer.",
        "I was hired by Acme in 2019 and laid off last month.",
        "Got a job offer out of nowhere. Pretty sure it's phishing.",
    ],
)
def test_later_retraction_cancels_an_earlier_offer(body):
    """An offer rescinded, fallen through, declined, lost again or a scam is not work."""
    assert not found(body)


@pytest.mark.parametrize(
    "body",
    [
        "I have a job offer but haven't decided whether to take it.",
        "I've been offered a job, waiting on the background check.",
        "I'm working at Starbucks while I look for something in my field.",
        "I started at Columbia this fall for my master's.",
    ],
)
def test_undecided_old_stopgap_or_school_is_not_found_work(body):
    """Undecided offers, long-held jobs, stop-gaps and school starts are not new work."""
    assert not found(body)


def test_earlier_setback_does_not_cancel_a_later_new_job():
    """A layoff or failed offer before the good news does not undo it (found, or at least asked)."""
    verdict = classify_leave(
        "Unsubscribe", "I was laid off in January, but I've now landed a new role."
    )
    assert verdict.outcome != LeaveOutcome.OTHER
    later = classify_leave(
        "Unsubscribe",
        "My last offer fell through in March, but I got a job at a different company.",
    )
    assert later.outcome != LeaveOutcome.OTHER  # at 16 words the scorer is near its threshold
    assert later.phrase == "got a job"


@pytest.mark.parametrize(
    "body",
    [
        "If I get a job I'll let you know.",
        "Hoping to land a job soon!",
        "Fingers crossed I get an offer.",
        "I'll rejoin once I've landed a job.",
        "i might be starting a new job soon",
        "Wish I could say I got a job.",
        "I thought I'd landed a job.",
        "I'd love to say I found a job, but no.",
        "Did you get the job?",
    ],
)
def test_hypothetical_or_wished_job_is_not_found_work(body):
    """Conditionals, hopes, wishes and questions are not news."""
    assert not found(body)


@pytest.mark.parametrize(
    "body",
    [
        "My wife got a job in Seattle and we're moving.",
        "Congrats to Bob who landed a job last week!",
        "My friend got hired through this group.",
        "My husband accepted an offer in Denver.",
        "So happy for Maria, who just started at Globex!",
        "Everyone else in my cohort has landed a job except me.",
        "A former coworker of mine was hired at Initech.",
        "My wife quit and got a job elsewhere.",
    ],
)
def test_third_party_job_news_is_not_found_work(body):
    """Someone else's good news does not move the sender to alumni."""
    assert not found(body)


def test_sender_included_with_third_party_is_found_work():
    """'My wife and I both got jobs' includes the sender."""
    assert found("My wife and I both got jobs this month!")


def test_job_phrase_in_quoted_text_below_plain_unsubscribe_is_not_found_work():
    """A quoted success story under a bare 'unsubscribe' is someone else's."""
    body = (
        "unsubscribe\n\nOn Mon, Jun 3, 2024 at 10:12 AM Dana <dana@x.org> wrote:\n"
        "> I got a job! Starting at Acme."
    )
    assert not found(body, subject="Re: Success story!")
    quoted = "Unsubscribe\n\n> Congratulations to Priya, who got a job!"
    assert not found(quoted, subject="Re: Weekly leads")


def test_job_title_or_tagline_in_signature_is_not_found_work():
    """Signatures with job titles or 'got the job' taglines do not count."""
    assert not found('unsubscribe\n\n--\nLinda Park | Hiring Manager\n"I got the job" stories!')
    assert not found("Please unsubscribe me.\n\n-- \nTom\nRecently hired? Tell us your story.")


def test_job_phrase_inside_quotation_marks_is_not_found_work():
    """Mentioning other people's "I got a job!" posts is not news."""
    assert not found('I keep reading "I got a job!" posts and it makes me feel worse.')


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Automatic reply: Unsubscribe",
            "I am out of the office until March 18. I start a new role.",
        ),
        ("Out of Office: digest", "I have left Acme Corp and started a new role elsewhere."),
        ("Réponse automatique", "Je suis absent du bureau. J'ai trouvé un nouveau poste."),
    ],
)
def test_out_of_office_auto_reply_is_not_found_work(subject, body):
    """An auto-reply is not the member asking to leave, whatever it says."""
    assert not found(body, subject=subject)


def test_no_longer_looking_with_another_reason_is_not_found_work():
    """'No longer looking' is weak: retiring or staying home wins."""
    assert not found("Retired! No longer looking. Remove me.")
    assert not found("I'm no longer looking for work, I've decided to stay home with the kids.")


@pytest.mark.parametrize(
    "body",
    [
        "I got an interview at Acme.",
        "I found the job board more useful.",
        "I'm starting a new job search strategy.",
        "I accepted an offer of admission to a nursing program.",
        "I start classes at the college on Monday.",
    ],
)
def test_search_related_nouns_are_not_found_work(body):
    """Interviews, job boards, job-search plans, school offers and classes are not work."""
    assert not found(body)


# ---------------------------------------------------------------- classify_leave: other languages


@pytest.mark.parametrize(
    "body",
    [
        "Encontré trabajo, gracias a todos.",
        "Conseguí un empleo en Monterrey.",
        "Me contrataron en Telefónica.",
        "J'ai trouvé un emploi !",
        "J'ai décroché un poste chez Capgemini.",
        "J'ai enfin trouvé du travail.",
        "Ich habe einen Job gefunden!",
        "Ich habe eine neue Stelle bei Siemens.",
        "Ich wurde eingestellt.",
    ],
)
def test_spanish_french_german_found_work(body):
    """The main phrasings in Spanish, French and German count."""
    assert found(body, subject="")


@pytest.mark.parametrize(
    "body",
    [
        "Todavía no he encontrado trabajo.",
        "No he conseguido empleo.",
        "Si encuentro trabajo les aviso.",
        "Mi esposa encontró trabajo en Madrid.",
        "Je n'ai pas trouvé de travail.",
        "Je n'ai toujours pas trouvé d'emploi.",
        "Mon mari a trouvé un emploi.",
        "Ich habe noch keinen Job gefunden.",
        "Ich habe die Stelle leider nicht bekommen.",
        "Meine Frau hat eine neue Stelle gefunden.",
        "Wenn ich eine neue Stelle gefunden habe, melde ich mich.",
    ],
)
def test_spanish_french_german_negations_and_third_parties_are_not_found_work(body):
    """Negations, conditionals and other people's news in those languages do not count."""
    assert not found(body, subject="")


# ---------------------------------------------------------------- classify_leave: extra phrases


def test_extra_phrases_count_as_found_work():
    """A list's extra_job_phrases extend the detector."""
    assert found("I matched into my residency program!", extra=("matched into my residency",))
    assert not found("I matched into my residency program!")


def test_extra_phrases_are_subject_to_negation_and_hypotheticals():
    """Extra phrases are still cancelled by 'not' and 'if'."""
    extra = ("matched into my residency",)
    assert not found("I have not matched into my residency yet.", extra=extra)
    assert not found("If I matched into my residency I'd tell you.", extra=extra)


# ---------------------------------------------------------------- the corpus


def load_corpus() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_corpus_is_big_varied_and_well_formed():
    """At least 220 messages, about half found-work, at least 50 hard, all fields typed."""
    rows = load_corpus()
    assert len(rows) >= 220
    assert 0.4 <= sum(r["found_work"] for r in rows) / len(rows) <= 0.6
    assert sum(r["hard"] for r in rows) >= 50
    assert len({r["body"] for r in rows}) >= len(rows) - 5
    for r in rows:
        assert {"subject", "body", "found_work", "hard", "note"} <= r.keys()
        assert isinstance(r["found_work"], bool) and isinstance(r["hard"], bool)


FIGURES: list[str] = []
PRECISION_FLOOR, RECALL_FLOOR = (
    0.97,
    0.88,
)  # measured 0.989, 0.950 on w4 + w16 (rules alone: < 0.5 per training writer)
RETENTION = Path(__file__).parents[1] / "data" / "retention"


def read_as_server(raw: bytes) -> tuple[str, str]:
    msg = parse(raw)
    return msg["subject"] or "", first_text(msg)


def test_classifier_on_the_held_out_writers():
    """The held-out writers' messages (w4, w16), mailed and read as the server reads them."""
    files = writer_files(RETENTION, "heldout")
    rows = [row for path in files for row in load(path)]
    report = evaluate(rows, read_as_server)
    writers = "+".join(writer(path) for path in files)
    line = figure(f"held-out writers {writers}", report)
    print(line)
    FIGURES.append(line)  # shown in the run's summary by conftest, even under -q
    assert report.overall.n == 1060
    assert report.overall.precision >= PRECISION_FLOOR
    assert report.overall.recall >= RECALL_FLOOR


@pytest.mark.parametrize(
    "body",
    [
        "The clinic brought me on as a medical assistant, so I won't need the list now.",
        "My union local put me on a crew starting Monday. Thanks for the leads.",
        "I excepted the postion at the county library. Take me off please.",
    ],
)
def test_implicit_found_work_from_the_rule_book_is_found_work(body):
    """RETENTION.md "implicit": no stock keyword, yet the member has work; the scorer finds it."""
    verdict = classify_leave("unsubscribe", body)
    assert verdict.found_work
    assert verdict.phrase and verdict.phrase.lower() in clean_text("unsubscribe", body).lower()


def test_paycheck_again_without_a_stock_phrase_is_at_least_asked():
    """RETENTION.md "implicit": "drawing a paycheck again" is never a plain leave."""
    body = "Please take me off. Drawing a paycheck again as of this week!"
    assert classify_leave("unsubscribe", body).outcome != LeaveOutcome.OTHER


def test_shipped_scorer_loads_and_scores_deterministically():
    """The weights load from the package; the same text always scores the same."""
    model = shipped_model()
    assert len(model.weights) == 1 << BITS and 0.0 < model.low <= model.high < 1.0
    body = "The clinic brought me on as a medical assistant."
    text = clean_text("unsubscribe", body)
    scores = {model.probability(text) for _ in range(3)}
    assert len(scores) == 1
    assert leave_probability("unsubscribe", body) == leave_probability("unsubscribe", body)


def test_auto_reply_is_other_however_the_scorer_scores_it():
    """RETENTION.md rule 12: an out-of-office that mentions a new job is never switched."""
    body = "I am currently out of the office. As of May 1 I have joined Acme as CFO; I got a job."
    assert classify_leave("Automatic reply: unsubscribe", body).outcome == LeaveOutcome.OTHER


# ---------------------------------------------------------------- classify_topic


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Acme is hiring", ""),
        ("", "We're hiring a data analyst in Austin."),
        ("", "Job opening: paralegal at Moss & Co"),
        ("", "Position available in our lab."),
        ("", "We are looking for a senior engineer to join the team."),
        ("", "Happy to refer anyone to Stripe."),
        ("", "Nous recrutons un développeur."),
        ("", "Estamos contratando."),
        ("", "Wir stellen ein!"),
    ],
)
def test_hiring_posts_are_hiring(subject, body):
    """Openings, 'is hiring', role searches and referral offers are hiring news."""
    assert classify_topic(subject, body) == "hiring"


@pytest.mark.parametrize(
    "body",
    [
        "I was laid off on Friday.",
        "Layoffs at Globex today.",
        "I lost my job last week.",
        "Big RIF at Initech.",
        "My position was eliminated.",
        "We got downsized.",
        "Me despidieron ayer.",
        "Plan social chez Renault.",
        "Massive Entlassungen bei Siemens.",
    ],
)
def test_layoff_posts_are_layoff(body):
    """Layoffs, RIFs, eliminated positions and job losses are layoff news."""
    assert classify_topic("", body) == "layoff"


@pytest.mark.parametrize(
    "body",
    [
        "See you at Tuesday's meetup!",
        "We are not hiring right now, sorry.",
        "Hiring freeze at Acme.",
        "I'm looking for a senior engineer position.",
        "Rif raff at the bar.",
    ],
)
def test_other_posts_have_no_topic(body):
    """Meetups, negated hiring, freezes, seekers' own searches and lower-case 'rif' have none."""
    assert classify_topic("", body) is None


def test_topic_with_more_hits_wins():
    """Two hiring cues outweigh one layoff cue."""
    body = "After the layoffs at Globex, Initech is hiring and has open roles for analysts."
    assert classify_topic("", body) == "hiring"


def test_topic_ignores_quoted_text():
    """A reply quoting a layoff post is not itself a layoff post."""
    assert classify_topic("Re: news", "See you Tuesday\n\n> I was laid off today") is None


# ---------------------------------------------------------------- is_unsubscribe_request


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("unsubscribe", ""),
        ("", "unsubscribe"),
        ("Re: Weekly leads", "please remove me from this list"),
        ("", "Take me off this list"),
        ("", "stop sending me emails"),
        ("", "unsubscribe me, I got a job"),
        ("", "Please remove me from this list, I got a job"),
        ("Unsubscribe - got a job", ""),
        ("", "Can you please remove me?"),
        ("", "Désabonner"),
        ("", "Quiero darme de baja"),
        ("", "Bitte abmelden"),
        ("", "Remove me\n\nSent from my iPhone"),
    ],
)
def test_short_command_like_post_is_unsubscribe_request(subject, body):
    """Short posts that ask to leave, in any supported language, are unsubscribe requests."""
    assert is_unsubscribe_request(subject, body)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("", "How do I unsubscribe my colleague?"),
        ("", "How do I unsubscribe?"),
        ("", "Please don't unsubscribe when you land a job - switch to alumni!"),
        ("Unsubscribe link broken", "The unsubscribe link in the footer gives a 404."),
        ("", "Why do people unsubscribe after they get a job?"),
        ("Leave policy", "How does parental leave work at Globex?"),
        ("Great meetup", "Thanks all for coming, the slides are on the wiki."),
        ("", ""),
        ("Re: unsubscribe", "Great thread.\n\n> unsubscribe"),
        (  # issue 11: a post about unsubscribing, swallowed as a leave before
            "Unsubscribe tips for your job search",
            "Most job boards add a List-Unsubscribe header, so your mail app shows a button.",
        ),
        (
            "Unsub from recruiter spam",
            "Worth doing before a new search: most recruiter mailings can be stopped in one "
            "click from the button your mail app shows at the top.",
        ),
    ],
)
def test_questions_and_ordinary_posts_are_not_unsubscribe_requests(subject, body):
    """How-to questions, someone else, negations and ordinary posts stay posts."""
    assert not is_unsubscribe_request(subject, body)


def test_long_post_mentioning_unsubscribe_is_not_unsubscribe_request():
    """A discussion past the word limit is a post even if it says 'unsubscribe me'."""
    body = (
        "I've been thinking about the volume on this list and whether people should "
        "switch to digest. "
        * 3
        + "Honestly some days I want to say unsubscribe me, but the leads are worth it."
    )
    assert not is_unsubscribe_request("Thoughts on volume", body)


# ---------------------------------------------------------------- robustness


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.text(max_size=1000), st.lists(st.text(max_size=20), max_size=3))
def test_classifiers_never_raise_on_arbitrary_text(subject, body, extra):
    """Any text in, a consistent answer out: a found-work or unsure verdict names the sender's
    words."""
    verdict = classify_leave(subject, body, extra)
    cleaned = clean_text(subject, body)
    if verdict.outcome != LeaveOutcome.OTHER:
        assert verdict.phrase and verdict.phrase.lower() in cleaned.lower()
    else:
        assert verdict.phrase is None
    assert "\n\n" not in cleaned and cleaned == cleaned.strip()
    assert classify_topic(subject, body) in (None, "hiring", "layoff")
    assert isinstance(is_unsubscribe_request(subject, body), bool)


def test_huge_or_pathological_bodies_are_handled_quickly():
    """Deep nesting, huge bodies and endless near-misses stay well under a second each."""
    bodies = [
        "<div>" + "<blockquote>" * 2000 + "x" + "</blockquote>" * 2000,
        "I got a new full time remote " * 2000,
        "\n".join(["On " + "x " * 140] * 300),
    ]
    for body in bodies:
        start = time.perf_counter()
        classify_leave("unsubscribe", body)
        classify_topic("", body)
        is_unsubscribe_request("", body)
        assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("body", ["I'm no longer looking, thanks all.", "My job search is over."])
def test_search_over_with_no_reason_is_unsure_not_found_work(body):
    """RETENTION.md rule 9: "not looking anymore" with no reason is asked, never switched."""
    verdict = classify_leave("unsubscribe", body)
    assert verdict.outcome == LeaveOutcome.UNSURE and not verdict.found_work

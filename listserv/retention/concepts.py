"""Concepts a leave message's sentences carry, in six languages (issue 9).

The learned scorer sees words; words do not carry over from one writer to the next ("staff rota
at the Royal Free", "entrei para os quadros da EDP", "ab 1. März bin ich bei Bosch"). What does
carry over is the shape: someone (the sender, or a spouse) + a start, a hire or a signature + an
employer's name or a date, with or without a negation, a hope or a loss in the same sentence.
`concepts` names those shapes per sentence so the scorer can weigh them across writers and
languages. Pure: text in, names out.
"""

from __future__ import annotations

import re

from listserv.text import any_of, fold

_I = re.IGNORECASE


def _lexicon(words: str) -> re.Pattern[str]:
    """Alternatives split by `|` or line, folded (accents dropped), matched on word boundaries;
    `*` ends a stem.

    >>> bool(_lexicon("neue stelle | start*").search("ich starte morgen"))
    True
    """
    parts = re.split(r"[|\n]", fold(words))
    alternatives = [
        re.escape(" ".join(w.split())).replace(r"\*", r"\w*") for w in parts if w.strip()
    ]
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


# The sender as the one who acts or is acted on.
SELF = _lexicon("""
    i | i'm | im | i've | ive | i'll | i'd | me | my | myself | we're starting
    yo | me | mi | estoy | soy | empece | entre | firme | acepte | consegui | arranque
    je | j'ai | j' | moi | m'a | m'ont | mon | ma | suis
    ich | mich | mir | mein | meine | meinen | bin
    eu | me | meu | minha | estou | sou | comecei | entrei | assinei | aceitei | passei | fui
    io | mi | mio | mia | sono | ho | iniziato | firmato
""")
# Someone else: the news is theirs, not the member's (RETENTION.md rule 2).
OTHER_PERSON = _lexicon("""
    husband | wife | son | daughter | partner | boyfriend | girlfriend | brother | sister
    mom | mum | dad | father | mother | friend | he | she | his | her | hubby | fiance*
    marido | esposo | esposa | mujer | hijo | hija | novio | novia | hermano | hermana
    mari | femme | fils | fille | copain | copine | frere | soeur | il | elle
    mann | frau | sohn | tochter | freund | freundin | bruder | schwester | er
    filho | filha | namorado | namorada | irmao | irma | ele | ela
    marito | moglie | figlio | figlia | fidanzat* | fratello | sorella | lui | lei
    colleague | coworker | client | candidate | candidates
""")
# A start, a hire, a signature, a return: the events that mean work was obtained.
GAIN = _lexicon("""
    start | starts | started | starting | begin | began | begun | beginning | commence*
    join | joined | joining | onboard* | orientation | hired | rehired | recalled | brought me
    took me | taken on | signed | accepted | accept | landed | secured | got picked | picked up
    offered | offer | offers | contract | appointed | appointment | absorbed | placed | onboarded
    employed | working | work at | work for | works | clocked | payroll | paycheck | payslip
    salary | first day | first shift | first week | badge | uniform | rota | shift | shifts
    empiezo | empece | empezar | comienzo | comence | arranco | arranque | entro
    entre | contrat* | firme | acepte | cogieron | fichado | fichada | incorpor* | nomina
    sueldo | chamba* | laburo | curro | currando | trabajando | turno
    debute | embauch* | recrut* | signe | accepte | decroch* | integre
    rejoins | rejoint | cdi | cdd | salaire | boulot | taf | periode d'essai | poste
    fange | angefangen | beginne | begonnen | eingestellt | unterschrieben | zusage | angenommen
    starte | gestartet | vertrag | gehalt | probezeit | ubernommen | ubernahme
    comecei | comeco | contratad* | efetivad* | admitid* | assinei | aceitei | entrei | carteira
    salario | trampo | fechei | chamaram | vaga | estou trabalhando
    inizio | iniziato | iniziata | assunt* | firmato | preso | presa | entrato | entrata
    accettato | stipendio | busta paga | in servizio | di ruolo | indeterminato
    tengo empleo | tengo trabajo | ya tengo | tengo contrato | encontre trabajo | me hicieron
    indefinid* | fijo | j'ai un travail | j'ai un emploi | trouve un travail | trouve un emploi
    j'ai trouve | ich habe eine stelle | hab eine stelle | habe eine stelle | anfangen | darf ab
    tenho emprego | consegui emprego | sem termo | ho un lavoro | ho trovato | trovato lavoro
    tempo indeterminato | i'm at | joined the | heading up | reporting for duty | snapped me up
    hired me | took it | taking a job | clients | clientes | clienti | kunden | faturando
    got a job | got the job | got a position | got the position | got a role | got the role
    found a job | found work | found a position | got an offer | got the offer | new gig
    put me on | brought on | took me on | rejoin* | back at | back to work | back in work
    working at | working for | working as | work as | first check | first paycheck | pay stub
    settlement | got the nod | said yes | new role | new position | new job | staff
    consegui | encontre | me llamaron | me seleccionaron | me quede con | ya trabajo
    trabajo en | trabajo de | me dieron el puesto | de alta | quede en
    trouve | pris | prise | je travaille | je bosse | en poste | j'integre | premier jour
    premier salaire | embauche | titularise*
    neue stelle | festanstellung | unbefristet | arbeite | bin jetzt bei | teil des | fahre
    eingestiegen | anstellung | erster arbeitstag
    arranjei | arrumei | passei | fui chamad* | trabalho na | trabalho no | primeiro salario
    comeco | tomei posse | nomead*
    lavoro da | lavoro alla | lavoro al | ho iniziato | primo stipendio | mi hanno preso
    vinto il concorso | sono in reception | presa in carico
""")
# Not jobless any more: negation words that mean the opposite (RETENTION.md "flip").
FLIP = re.compile(
    r"(?<!\w)(?:"
    + any_of(r"""
    (?:not|no longer|no more) (?:\w+ ){0,2}(?:jobless|unemployed|out of work|on the dole|looking)
    (?:jobless|unemployed|out of work) no (?:more|longer) | off (?:the dole|unemployment)
    ya no (?:\w+ ){0,2}(?:desemplead[oa]|parad[oa]|en paro|sin trabajo|sin chamba)
    (?:plus|fini) (?:\w+ ){0,2}(?:chomeu\w*|au chomage|sans emploi|demandeu\w* d'emploi)
    (?:nicht mehr|nie mehr) (?:\w+ ){0,2}arbeitslos | arbeitslos (?:\w+ ){0,2}vorbei
    nicht mehr arbeitslos | kein (?:\w+ )?arbeitslose\w* mehr
    (?:nao|nunca) (?:\w+ ){0,3}mais (?:\w+ )?desempregad[oa] | sai do desemprego
    (?:non|mai) (?:\w+ ){0,2}piu (?:\w+ )?disoccupat[oa] | fuori dalla disoccupazione""")
    + r")(?!\w)"
)
WORK = _lexicon("""
    job | jobs | position | role | post | work | gig | employer | company | team | crew
    trabajo | empleo | puesto | plaza | empresa
    emploi | travail | entreprise | equipe
    stelle | arbeit | job | firma | team
    emprego | trabalho | empresa | equipe
    lavoro | posto | impiego | azienda | squadra
""")
NEGATION = _lexicon("""
    not | no | never | n't | still | yet | without | nothing | none | nobody | nope
    no | nunca | todavia | aun | sigo sin | sin | nada | ningun*
    ne | pas | jamais | toujours pas | rien | aucun*
    nicht | kein* | nie | noch | nichts
    nao | nunca | ainda | nenhum* | nada
    non | mai | ancora | nessun* | niente
""")
HOPE = _lexicon("""
    if | once | hope | hoping | hopefully | fingers crossed | maybe | might | would | could
    interview | interviews | interviewing | waiting | wait | pending | considering | thinking
    weighing | applied | applying | application | praying | soon | next round | final round
    si | ojala | espero | entrevista* | quizas | tal vez | pendiente | postul*
    quand | j'espere | espere | entretien* | peut-etre | candidature* | attente
    wenn | falls | hoffe | hoffentlich | vorstellungsgesprach | vielleicht | bewerb* | warte
    se | quando | espero | entrevista* | talvez | aguardando | candidat*
    se | spero | colloqui* | forse | aspetto | candidatur*
""")
LOSS = _lexicon("""
    rescind* | withdrew | withdrawn | pulled | fell through | let go | laid off | layoff | fired
    didn't work out | did not work out | ended | not renewed | terminated | cancelled | canceled
    lost | declined | turned down | eliminated | redundan* | closed | cut | bankrupt | folded
    didn't keep | did not keep | let everyone go | let us go | let me go | let the whole
    back to square one | unemployed again | looking again | back to looking | back on the market
    only lasted | lasted | probation | temp ended | season ended | no longer there
    corrieron | echaron | sigo igual | otra vez buscando | de nuevo buscando | se acabo
    mis fin | fin de contrat | pas ete confirme* | remercie | de nouveau | a nouveau
    nicht bestanden | nicht verlangert | beendet | wieder arbeitslos | wieder auf der suche
    mandaram embora | fiquei sem | de novo | desligad* | encerrad* | procurando de novo
    mandato via | di nuovo | ancora disoccupat* | chiuso | terminato
    retiraron | cayo | despid* | cancelaron | perdi | rechace
    annule* | retire* | licenci* | non confirmee | rompu | perdu | refuse
    zuruckgezogen | abgesagt | gekundigt | entlassen | verloren | abgelehnt
    cancelaram | demitid* | desistiram | perdi | recusei
    ritirat* | licenziat* | saltat* | perso | rifiutat*
""")
# Work that RETENTION.md rules 5, 7 and 10 do not count.
NOT_COUNTED = _lexicon("""
    promot* | promoción | raise | transfer* | internal* | volunteer* | unpaid | intern | retire*
    retiring | retirement | pension | school | degree | university | college | course | bootcamp
    masters | phd | caring | caregiv* | carer | my mother | my mom | my dad | baby | maternity
    parental | health | surgery | travel* | sabbatical | considering | thinking about
    student | studying | study | mfa | mba | pgce | master's | first-year | semester | enrolled
    full-time dad | full-time mum | full-time mom | stay-at-home | same job | same company
    same employer | current job | current employer | my own boss | side project
    estudiante | estudiando | carrera | maestria | misma empresa | mismo trabajo
    etudiant* | etudes | alternance | meme entreprise | meme poste | conge parental
    student* | studiere | weiterbildung | ausbildung | referendariat | gleichen firma
    estudante | estudando | mestrado | mesma empresa | licenca
    studente | studentessa | studio | laurea | stessa azienda | maternita
    ascenso | traslado | voluntari* | jubil* | universidad | master | cuidando | cuidar
    promu | promotion | mutation | benevol* | retraite | ecole | formation | stage non
    beforder* | versetz* | ehrenamt* | rente | ruhestand | studium | umschulung | elternzeit
    promovid* | transferid* | voluntari* | aposent* | faculdade | estagio nao | cuidar
    promoss* | trasferit* | volontari* | pension* | universita | tirocinio non | servizio civile
""")
# The search and its tools, not a job: "I found the job board more useful".
SEARCH = _lexicon("""
    job board* | job search* | job hunt* | job fair* | job posting* | job listing* | job lead*
    job alert* | job market | job ad | job ads | job site* | job seeker* | job club | job offers
    job emails | job digest | job list | looking for work | looking for a job
    bolsa de trabajo | ofertas de empleo | ofertas de trabajo | busqueda de empleo | buscando trabajo
    offres d'emploi | recherche d'emploi | cherche du travail | cherche un emploi
    stellenangebote | jobborse | jobsuche | stellensuche | arbeitssuche
    vagas de emprego | busca de emprego | procurando emprego | procura de emprego
    offerte di lavoro | ricerca di lavoro | cerco lavoro | annunci di lavoro
""")
# A day or date, which often is the only sign: "I start the 9th", "ab 1. März".
DATE = re.compile(
    r"(?<!\w)(?:"
    + any_of(r"""
    monday | tuesday | wednesday | thursday | friday | saturday | sunday | tomorrow | next week
    january | february | march | april | june | july | august | september | october
    november | december | jan | feb | mar | apr | jun | jul | aug | sep | sept | oct | nov | dec
    lunes | martes | miercoles | jueves | viernes | manana | enero | febrero | marzo | abril
    mayo | junio | julio | agosto | septiembre | octubre | noviembre | diciembre
    lundi | mardi | mercredi | jeudi | vendredi | demain | janvier | fevrier | mars | avril
    mai | juin | juillet | aout | septembre | octobre | novembre | decembre
    montag | dienstag | mittwoch | donnerstag | freitag | morgen | januar | februar | marz
    juni | juli | oktober | dezember
    segunda | terca | quarta | quinta | sexta | amanha | janeiro | fevereiro | marco | maio
    junho | julho | setembro | outubro | novembro | dezembro
    lunedi | martedi | mercoledi | giovedi | venerdi | domani | gennaio | febbraio | aprile
    maggio | giugno | luglio | settembre | ottobre | dicembre
    \d{1,2}(?:st|nd|rd|th|er|º|°|\.)? | \d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?""")
    + r")(?!\w)"
)
# A proper name after a preposition: "at the Royal Free", "chez Renault", "bei Bosch".
EMPLOYER = re.compile(
    r"(?:^|\s)"
    + any_of("""
    at | with | for | joined | joining | by | from | to | at the | with the | for the
    en | con | para | a | al | en la | en el | de | chez | a la | au | pour | avec | dans
    bei | fur | von | zur | zum | na | no | em | pela | pelo | da | do | presso | alla | al
    nella | nel | per""")
    + r"\s+(?-i:[A-Z][\w&.'-]+)",
    _I,
)
THANKS_BYE = _lexicon("""
    thanks | thank | cheers | bye | goodbye | congrat* | celebrat* | finally | excited | happy
    gracias | adios | por fin | feliz | merci | enfin | heureux | heureuse | ravi* | danke
    endlich | froh | obrigad* | finalmente | feliz | grazie | felice | contento | contenta
""")
# Sentences, and clauses where the story turns: "My offer fell through, but I got a job at X."
SENTENCE = re.compile(
    r"(?<=[.!?])\s+|\n+|[,;]?\s+(?=(?:but|however|though|pero|aunque|mais|aber|doch|mas|ma|però)\s)",
    _I,
)
_MARKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("self", SELF),
    ("other", OTHER_PERSON),
    ("gain", GAIN),
    ("work", WORK),
    ("neg", NEGATION),
    ("hope", HOPE),
    ("loss", LOSS),
    ("notcounted", NOT_COUNTED),
    ("date", DATE),
    ("thanks", THANKS_BYE),
    ("flip", FLIP),
    ("search", SEARCH),
)


def sentence_marks(sentence: str) -> frozenset[str]:
    """The concepts one sentence carries.

    >>> sorted(sentence_marks("My husband started at Boeing on Monday"))
    ['date', 'employer', 'gain', 'other', 'self']
    """
    folded = fold(sentence)
    marks = {name for name, pattern in _MARKS if pattern.search(folded)}
    if EMPLOYER.search(sentence):
        marks.add("employer")
    return frozenset(marks)


def concepts(text: str) -> set[str]:
    """Names of the concept shapes in a cleaned text: each sentence's gain with what sits beside
    it, and the message's counts of such sentences.

    >>> sorted(c for c in concepts("Started at Boeing Monday. Remove me.") if "+" in c)
    ['s:gain+date', 's:gain+date+employer', 's:gain+employer', 's:gain:clean+date', \
's:gain:clean+employer']
    """
    names: set[str] = set()
    gains = 0
    seen: set[str] = set()
    for sentence in SENTENCE.split(text):
        if not sentence.strip():
            continue
        marks = sentence_marks(sentence)
        seen |= marks
        if "gain" not in marks and "work" not in marks:
            names.update(f"m:{m}" for m in marks)
            continue
        head = "gain" if "gain" in marks else "work"
        side = sorted(marks - {"gain", "work"})
        gains += head == "gain"
        names.add(f"s:{head}")
        names.update(f"s:{head}+{m}" for m in side)
        names.update(f"s:{head}+{a}+{b}" for i, a in enumerate(side) for b in side[i + 1 :])
        if not marks & {"neg", "hope", "loss", "notcounted", "other", "search"}:
            names.add(f"s:{head}:clean")
            names.update(f"s:{head}:clean+{m}" for m in side)
    names.add(f"n:gains={min(gains, 3)}")
    if gains:  # what else the message says beside a gain, in any sentence
        names.update(f"g&{m}" for m in seen & {"loss", "notcounted", "hope", "other", "neg"})
    if gains and "loss" in seen:  # which has the last word: the setback, or news after one
        folded = fold(text)
        last = {
            m: max((x.start() for p in patterns for x in p.finditer(folded)), default=-1)
            for m, patterns in (("gain", (GAIN, WORK)), ("loss", (LOSS,)))
        }
        names.add("last:" + max(last, key=last.__getitem__))
    return names

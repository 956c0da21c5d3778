"""A realistic demo network: members, the network's second meeting with its notes, and the next meeting.

Every row is found by a stable key (member email, series slug, meeting slug, one RSVP per member and
meeting, notes per meeting, action text) before it is created, so loading twice adds nothing. Rows that
already exist are left exactly as they are, even if someone has edited them since.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select

from .extensions import db
from .models import MeetingStatus, Visibility, utcnow
from .models.feedback import MeetingFeedback
from .models.meetings import AgendaItem, Meeting, MeetingSeries, WorkshopQuestion, WorkshopRoom
from .models.members import Member, Region, Sector
from .models.notes import ActionItem, ActionStatus, MeetingNotes, NoteRevision, NotesStatus
from .models.rsvps import Answer, Rsvp, RsvpSource
from .rendering import render_markdown
from .services.auth import find_member_by_email
from .timefmt import day, when

ZONE_NAME = "Europe/London"
LONDON = ZoneInfo(ZONE_NAME)

ORGANISER_EMAIL = "organiser@kxn.example.org"
CONTACT_EMAIL = "stephen.walcott@police-foundation.org.uk"
SERIES_SLUG = "kxn"
SERIES_NAME = "Knowledge Exchange Network"
SERIES_DESCRIPTION = (
    "The network's online meetings, every few weeks: police, health and public-sector practitioners share what works "
    "in policing young adults (18–25), then talk it through in workshop rooms."
)
NEXT_TITLE = "Youth engagement, including the new children and young adult strategy"
NEXT_JOIN_URL = "https://meet.kxn.example.org/youth-engagement"

# (name, email, organisation, job title). The three speakers and the network contact are named in the
# network's own notes of meeting two; everyone else is invented and has an example.org/.net address.
MEMBERS: list[tuple[str, str, str, str]] = [
    ("Olivia Organiser", ORGANISER_EMAIL, "The Police Foundation", "Network coordinator"),
    ("Stephen Walcott", CONTACT_EMAIL, "The Police Foundation", "Knowledge Exchange Network contact"),
    ("Stan Gilmour", "stan.gilmour@example.org", "Thames Valley VRU", "Director"),
    (
        "Sue Clarke",
        "sue.clarke@example.org",
        "Lancashire VRU",
        "Detective Chief Superintendent; national lead for trauma-informed practice",
    ),
    (
        "Phil Ashford",
        "phil.ashford@example.org",
        "Vulnerability Knowledge and Practice Programme (VKPP)",
        "Senior Project Manager",
    ),
    (
        "Nadia Begum",
        "nadia.begum@example.net",
        "Vulnerability Knowledge and Practice Programme (VKPP)",
        "Practice research officer",
    ),
    ("Ella Nowak", "ella.nowak@example.net", "Thames Valley VRU", "Analyst"),
    ("Tom Ellison", "tom.ellison@example.net", "Thames Valley Police", "Detective Inspector, neurodiversity screening"),
    ("Hannah Brooks", "hannah.brooks@example.org", "Thames Valley Police", "Schools engagement officer"),
    ("Fiona McAllister", "fiona.mcallister@example.net", "Lancashire VRU", "DIVERT custody navigator lead"),
    ("Owen Hargreaves", "owen.hargreaves@example.org", "Lancashire VRU", "Data and evaluation officer"),
    ("Callum Rigby", "callum.rigby@example.net", "Lancashire Youth Offending Team", "Youth justice officer"),
    ("Aisha Rahman", "aisha.rahman@example.net", "Northumbria Police", "Inspector, Violence Reduction Unit"),
    ("Jordan Pike", "jordan.pike@example.org", "Northumbria Police", "Detective Sergeant, young adult transitions"),
    ("Laura Bennett", "laura.bennett@example.org", "Newcastle City Council", "Transitions service manager"),
    ("Joseph Armstrong", "joseph.armstrong@example.net", "Newcastle City Council", "Adult social care team leader"),
    ("Gareth Pryce", "gareth.pryce@example.net", "South Wales VRU", "Public health lead"),
    ("Megan Lloyd", "megan.lloyd@example.org", "South Wales VRU", "Police sergeant on secondment"),
    ("Imran Hussain", "imran.hussain@example.net", "West Yorkshire VRU", "Partnerships manager"),
    ("Rachel Whitaker", "rachel.whitaker@example.org", "West Yorkshire VRU", "Seconded analyst"),
    ("Chidi Okafor", "chidi.okafor@example.net", "Bedfordshire Police", "Chief Inspector, gangs and serious violence"),
    ("Priya Shah", "priya.shah@example.org", "Basildon Hospital", "Emergency department consultant"),
    ("Kerry Doyle", "kerry.doyle@example.net", "Basildon Hospital", "Youth worker, A&E project"),
    ("Marcus Green", "marcus.green@example.org", "Junction 42", "Programme manager"),
    ("Danny Reid", "danny.reid@example.net", "LEAD", "Case manager"),
    ("Shanice Campbell", "shanice.campbell@example.org", "LEAD", "Mentor"),
    ("Ben Atkinson", "ben.atkinson@example.net", "NHS mental health trust", "Liaison and diversion practitioner"),
    ("Helen Fraser", "helen.fraser@example.org", "NHS community health trust", "Named nurse for safeguarding adults"),
    ("Ruth Mensah", "ruth.mensah@example.org", "Oxfordshire school leaders' network", "Headteacher"),
    ("Grace Oduya", "grace.oduya@example.net", "The Police Foundation", "Research officer"),
    ("Sam Whitfield", "sam.whitfield@example.net", "The Police Foundation", "Senior research officer"),
]

# Each organisation's sector and region, given to its members: what Insights counts the network's reach by.
WHERE: dict[str, tuple[Sector, Region]] = {
    "The Police Foundation": (Sector.THIRD_SECTOR, Region.NATIONAL),
    "Thames Valley VRU": (Sector.VIOLENCE_REDUCTION_UNIT, Region.SOUTH_EAST),
    "Lancashire VRU": (Sector.VIOLENCE_REDUCTION_UNIT, Region.NORTH_WEST),
    "Vulnerability Knowledge and Practice Programme (VKPP)": (Sector.POLICE, Region.NATIONAL),
    "Thames Valley Police": (Sector.POLICE, Region.SOUTH_EAST),
    "Lancashire Youth Offending Team": (Sector.YOUTH_JUSTICE, Region.NORTH_WEST),
    "Northumbria Police": (Sector.POLICE, Region.NORTH_EAST),
    "Newcastle City Council": (Sector.LOCAL_AUTHORITY, Region.NORTH_EAST),
    "South Wales VRU": (Sector.VIOLENCE_REDUCTION_UNIT, Region.WALES),
    "West Yorkshire VRU": (Sector.VIOLENCE_REDUCTION_UNIT, Region.YORKSHIRE_AND_THE_HUMBER),
    "Bedfordshire Police": (Sector.POLICE, Region.EAST_OF_ENGLAND),
    "Basildon Hospital": (Sector.HEALTH, Region.EAST_OF_ENGLAND),
    "Junction 42": (Sector.THIRD_SECTOR, Region.NORTH_EAST),
    "LEAD": (Sector.THIRD_SECTOR, Region.LONDON),
    "NHS mental health trust": (Sector.HEALTH, Region.SOUTH_WEST),
    "NHS community health trust": (Sector.HEALTH, Region.WEST_MIDLANDS),
    "Oxfordshire school leaders' network": (Sector.EDUCATION, Region.SOUTH_EAST),
}

# What the first members who came to meeting two said afterwards: (score, what they will do differently, what a
# future meeting should cover), given in the order of the meeting's answers.
FEEDBACK = [
    (5, "Map our custody referrals against the Sequential Intercept Model.", "Young adults leaving care"),
    (4, "Share our VRU's evaluation framework with the health board.", "Measuring what prevention achieves"),
    (4, "", "Youth engagement and the new children and young adult strategy"),
    (3, "Invite our local VRU to the next practitioners' forum.", ""),
    (5, "Bring trauma-informed training to new recruits.", "Neurodiversity screening in custody"),
    (4, "", "Funding beyond the VRUs' current settlements"),
]


@dataclass
class _Talk:
    start: dt.time
    title: str
    speaker: str = ""  # email of a demo member, looked up for name, role and organisation


class _Answer(NamedTuple):
    email: str
    answer: Answer
    attended: bool | None = None
    source: RsvpSource = RsvpSource.EMAIL_LINK
    comment: str = ""
    access_needs: str = ""


@dataclass
class _MeetingPlan:
    slug: str
    title: str
    theme: str
    description: str
    day: dt.date
    join_url: str
    capacity: int | None
    agenda: list[_Talk]
    rooms: list[tuple[str, list[str]]]
    rsvps: list[_Answer] = field(default_factory=list)


def most_recent_26_january(today: dt.date) -> dt.date:
    """The last 26 January strictly before today, so that meeting is over and its notes can exist."""
    candidate = dt.date(today.year, 1, 26)
    return candidate if candidate < today else dt.date(today.year - 1, 1, 26)


def next_tuesday_9_march(today: dt.date) -> dt.date:
    """The first 9 March after today that falls on a Tuesday (2027, 2032, 2038, ...)."""
    year = today.year
    while True:
        candidate = dt.date(year, 3, 9)
        if candidate > today and candidate.weekday() == 1:
            return candidate
        year += 1


def london_instant(on: dt.date, at: dt.time) -> dt.datetime:
    """A London wall-clock time as a UTC instant (GMT in winter, BST in summer)."""
    return dt.datetime.combine(on, at, tzinfo=LONDON).astimezone(dt.UTC)


WORKSHOP_QUESTIONS = [
    "What have local VRUs learned about preventing violence?",
    "How should VRUs use that learning as they develop?",
    "How can VRUs influence change across the wider system of agencies and actors?",
    "What work are VRUs doing with young adults?",
    "How can VRUs help with the move into adulthood, so that support is not lost when a young person turns 18?",
]

# (text, owner, days before the next meeting it is due, done?)
ACTIONS = [
    (
        "Collect the interim outcome measures each VRU uses to show progress before long-term results are in, "
        "and share them with the network.",
        "The Police Foundation",
        14,
        False,
    ),
    (
        "Share Thames Valley Police's neurodevelopmental screening tool, and what it has found so far, with "
        "network members.",
        "Thames Valley Police",
        21,
        False,
    ),
    (
        "Circulate the Northumbria Police and Newcastle City Council approach to joining up children's and adult "
        "services at 18.",
        "Newcastle City Council",
        28,
        True,
    ),
]


def _meeting_two_plan(on: dt.date) -> _MeetingPlan:
    return _MeetingPlan(
        slug=f"{on.isoformat()}-violence-reduction-units",
        title="Violence Reduction Units",
        theme="What Violence Reduction Units have learned about preventing violence and supporting young adults",
        description=(
            "The network's second meeting looks at **Violence Reduction Units (VRUs)**: what they have learned "
            "about preventing serious violence, how they work with young adults, and how they can keep support "
            "going when a young person turns 18.\n\n"
            "Three short talks are followed by workshop rooms and a shared feedback session."
        ),
        day=on,
        join_url="https://meet.kxn.example.org/violence-reduction-units",
        capacity=60,
        agenda=[
            _Talk(dt.time(15, 0), "Welcome and introductions"),
            _Talk(dt.time(15, 10), "The Sequential Intercept Model", "stan.gilmour@example.org"),
            _Talk(dt.time(15, 30), "The social determinants of violence", "sue.clarke@example.org"),
            _Talk(dt.time(15, 50), "The National Vulnerability Action Plan", "phil.ashford@example.org"),
            _Talk(dt.time(16, 10), "Workshop rooms"),
            _Talk(dt.time(16, 45), "Feedback from the rooms and close"),
        ],
        rooms=[
            ("Room 1", WORKSHOP_QUESTIONS[0:2]),
            ("Room 2", WORKSHOP_QUESTIONS[2:3]),
            ("Room 3", WORKSHOP_QUESTIONS[3:5]),
        ],
        rsvps=[
            _Answer(ORGANISER_EMAIL, Answer.GOING, True, RsvpSource.WEB),
            _Answer(CONTACT_EMAIL, Answer.GOING, True, RsvpSource.WEB),
            _Answer("stan.gilmour@example.org", Answer.GOING, True),
            _Answer("sue.clarke@example.org", Answer.GOING, True, RsvpSource.CALENDAR_REPLY),
            _Answer("phil.ashford@example.org", Answer.GOING, True),
            _Answer("aisha.rahman@example.net", Answer.GOING, True),
            _Answer(
                "imran.hussain@example.net", Answer.GOING, True, RsvpSource.WEB, access_needs="Live captions, please."
            ),
            _Answer("marcus.green@example.org", Answer.GOING, True),
            _Answer(
                "priya.shah@example.org",
                Answer.GOING,
                True,
                RsvpSource.CALENDAR_REPLY,
                comment="May join late from a shift.",
            ),
            _Answer("chidi.okafor@example.net", Answer.GOING, False),
            _Answer("laura.bennett@example.org", Answer.MAYBE, comment="Depends on a panel that day."),
            _Answer("ruth.mensah@example.org", Answer.DECLINED, comment="Governors' meeting, sorry."),
        ],
    )


def _next_meeting_plan(on: dt.date) -> _MeetingPlan:
    return _MeetingPlan(
        slug=f"{on.isoformat()}-youth-engagement",
        title=NEXT_TITLE,
        theme="Youth engagement",
        description=(
            "The network turns to **youth engagement**, including the new children and young adult strategy: "
            "how to involve young people and young adults in the services meant for them, and what the strategy "
            "changes for partners.\n\n"
            "It follows on from meeting two, where members asked how support can carry on past a young "
            "person's 18th birthday. Two short talks are followed by workshops in breakout rooms.\n\n"
            f"Questions beforehand: [Stephen Walcott](mailto:{CONTACT_EMAIL})."
        ),
        day=on,
        join_url=NEXT_JOIN_URL,
        capacity=60,
        agenda=[
            _Talk(dt.time(15, 0), "Welcome and introductions", CONTACT_EMAIL),
            _Talk(dt.time(15, 10), "Listening to young people: engagement that works", "imran.hussain@example.net"),
            _Talk(
                dt.time(15, 35),
                "The new children and young adult strategy: what changes for partners",
                "nadia.begum@example.net",
            ),
            _Talk(dt.time(16, 0), "Workshops in breakout rooms"),
            _Talk(dt.time(16, 45), "Feedback from the rooms and close"),
        ],
        rooms=[
            (
                "Room 1",
                [
                    "How do you involve young people in designing the services meant for them?",
                    "What has stopped young adults engaging, and what helped?",
                ],
            ),
            (
                "Room 2",
                [
                    "What should the new children and young adult strategy mean for your organisation?",
                    "How can the drop in support at 18 be closed in practice?",
                ],
            ),
        ],
        rsvps=[
            _Answer(ORGANISER_EMAIL, Answer.GOING, None, RsvpSource.WEB),
            _Answer(CONTACT_EMAIL, Answer.GOING, None, RsvpSource.WEB),
            _Answer("imran.hussain@example.net", Answer.GOING, access_needs="Live captions, please."),
            _Answer("nadia.begum@example.net", Answer.GOING),
            _Answer("laura.bennett@example.org", Answer.GOING, None, RsvpSource.CALENDAR_REPLY),
            _Answer(
                "danny.reid@example.net", Answer.GOING, comment="Bringing a colleague's questions from our mentors."
            ),
            _Answer("hannah.brooks@example.org", Answer.GOING, None, RsvpSource.WEB),
            _Answer("gareth.pryce@example.net", Answer.MAYBE),
            _Answer("chidi.okafor@example.net", Answer.DECLINED, comment="On leave that week."),
        ],
    )


def _notes_markdown(meeting_two: _MeetingPlan, next_meeting: Meeting, speakers: dict[str, Member]) -> str:
    talks = [talk for talk in meeting_two.agenda if talk.speaker]
    rows = "\n".join(
        f"| {talk.start:%H:%M} | {speakers[talk.speaker].name}, {speakers[talk.speaker].job_title.split(';')[0]}, "
        f"{speakers[talk.speaker].organisation} | {talk.title} |"
        for talk in talks
    )
    questions = "\n".join(f"{n}. {text}" for n, text in enumerate(WORKSHOP_QUESTIONS, start=1))
    actions = "\n".join(f"- {text} *Owner: {owner}.*" for text, owner, _days, _done in ACTIONS)
    next_when = when(next_meeting.starts_at, next_meeting.ends_at, next_meeting.timezone)
    return f"""\
The network's second meeting looked at **Violence Reduction Units (VRUs)**. The units were set up as violent \
crime rose. They name adverse childhood experiences (ACEs), deprivation and school exclusion among the main \
drivers of serious violence, and several of them concentrate on people under 25.

## Speakers

| Time | Speaker | Talk |
|---|---|---|
{rows}

### The Sequential Intercept Model

Stan Gilmour presented the Sequential Intercept Model (SIM) as a framework for children and young people with \
neurodevelopmental disorders or disabilities who come into the criminal justice system through violence. These \
young people are over-represented in custody; the model shows the points at which stepping in earlier can keep \
them out of it.

### The social determinants of violence

Sue Clarke, who is also the national lead for trauma-informed practice, argued that recognising and acting on \
the drivers and risk factors behind serious violence safeguards the young person and, in the end, prevents \
crime. Lancashire VRU is working to make this trauma-informed approach part of its everyday culture.

### The National Vulnerability Action Plan

Phil Ashford described how the VKPP developed its National Vulnerability Action Plan, which aims for a \
coordinated, effective and evidence-based response to protecting vulnerable people. Its call for practice \
concentrates on cases involving 18 to 21 year olds, and the programme is working with VRUs to bring \
safeguarding practice into line.

## Workshop questions

After the talks, members split into workshop rooms to discuss:

{questions}

## Lessons learned and future development

### Measuring success

Many members were worried about **how success is measured and what that means for future funding**. The units \
have existed for about 18 months, the first six of them spent understanding the problem. There are signs of \
good practice, but it is too early to judge the units with confidence, and evidence sent to the Home Office \
should say so.

The system, funding included, expects results quickly, yet prevention is slow and causes are hard to \
separate: a fall in hospital admissions for knife injuries rarely has one clear reason. **Interim outcome \
measures** would show progress along the way. Better police recording of what was done, and why it mattered, \
would also help.

### The right people

VRUs depend on **well-trained staff with relevant experience**, as LEAD's practice shows. A practitioner with a \
background young people can relate to is credible to those in gangs or on the edge of them, and interventions \
work better as a result. Recruiting case managers of the same age and ethnicity as the young person helps to \
build trust. Members also wanted less binary talk about victims and offenders, and about who "deserves" help, \
and warned that some technology risks reinforcing discrimination.

### Legacy

Change has to be embedded in organisations. If VRU funding were diverted or stopped, members feared that good \
work would be lost and the wheel reinvented again.

## Emerging practice

- **Northumbria Police** has a single police officer in its VRU and coordinates through statutory services: \
more bureaucracy, but steadier provision. Third-sector funding is scattered, so information about services has \
to be kept accurate and up to date for the people who use them.
- **South Wales VRU** also has one police officer, which makes it more of a public health unit.
- **West Yorkshire VRU** uses secondments to bring in staff from different backgrounds. Information sharing \
still falls short, for practical rather than legal reasons, across five districts and agencies that tend to \
work in silos.
- **Thames Valley Police** is developing screening tools to identify neurodevelopmental disorders, which members \
felt would add real value if used nationally; too little is done to understand disadvantages such as \
neurodiversity.

## Influencing change across a wider system

### Whole-system change

Members called for **whole-system change** across social care, justice and health, and for understanding the \
**generic vulnerability** of people who come into contact with criminal justice. One example: a 21-year-old \
woman known to eating disorder and mental health crisis services was found, once a suicide attempt brought her \
into custody, to be exploited by local drug gangs. Only **sharing information** makes contextual safeguarding \
possible.

### The gap at 18

Most prevention work is aimed at early years and children rather than at 18 to 25 year olds. Support that a \
17-year-old can reach the day before their 18th birthday can be gone the day after: there are frameworks for \
children and for adults, but little to carry people from one to the other. Partners are closely involved in \
safeguarding under-18s (the YOLO programme is one example), yet more violent offenders are aged 18 to 30. \
Members saw a need for a **culture shift** away from waiting for a violent offence to happen.

Junction 42's work suggests asking who tomorrow's Integrated Offender Management (IOM) cohort will be and how \
to keep them out of the revolving door, perhaps by treating 16 to 25 year olds as one group, since that is when \
school ends and services fall away.

### Adversity reduction, not only violence reduction

Some felt that **"violence reduction" is too narrow a frame**; "adversity reduction" would sit more naturally \
in public health than in criminal justice. Every agency is trying to spot adversity and stop it becoming \
vulnerability. VRUs should not step in for mainstream services: needing them to would show that the **structures \
that support the move to adulthood are not good enough**.

### Working together

One VRU described its Youth Offending Team's worry about young adults on bail who were at risk of self-harm. \
**Collaboration** between the police, the NHS and social services cut bail time and opened up medical support. \
Funding tied to violence gets partners into the room, but only under that banner, whereas partnerships work \
best when every part of the system gains.

Another unit found it helped for each agency to keep its own workstream while **reading each other's outcome \
frameworks**, so each could see where it adds value to the others. Members wanted this work collected \
centrally. Budget cycles differ between health, education and policing, and Covid has made it even less clear \
who is responsible for which intervention.

On **the role of the police** in a public health approach, one VRU passed some of its funding to local \
organisations to lead community engagement, while keeping a close eye on quality.

### Emerging practice across the system

- **Basildon Hospital** runs a project for young people, young adults included, who arrive at A&E, using the \
visit as a teachable moment. It engages them better than custody can: in hospital nobody is prosecuted for not \
engaging, and the stress of a police station is absent.
- In **Lancashire**, DIVERT navigators in police custody see a widening gap in referrals. Young people caught up \
in county lines also reach A&E with no support until navigators are there. There is as yet no service, and \
little evidence, for an "always available adult" for young adults.
- **Thames Valley Police** finds its VRU too police-heavy and uses networks to balance it. Its network of \
Oxfordshire school leaders and safeguarding leads on alternatives to exclusion only took off once a committed \
school leader joined: *"if you want to work in the education space, get someone from education"*. It led to a \
fair access protocol for discussing urgent individual cases.
- **Northumbria Police and Newcastle City Council** have brought adult and children's services together so \
support does not drop away at 18.
- **Thames Valley Police** also works in schools through the VRU, leading with relationships rather than \
enforcement; officers do not wear uniform there.
- **Bedfordshire Police** ran a multi-agency gang panel before VRUs existed; when it was stretched by too many \
young people, the service was refreshed.

## Actions

{actions}

## Next meeting

**{next_when}**, online: {next_meeting.title}. [Join the meeting]({next_meeting.join_url}). For more \
information, contact Stephen Walcott at [{CONTACT_EMAIL}](mailto:{CONTACT_EMAIL}).
"""


class _Loader:
    def __init__(self, progress: Callable[[str], None], today: dt.date | None) -> None:
        self.progress = progress
        if today is None:
            self.now = utcnow()
            self.today = self.now.astimezone(LONDON).date()
        else:
            self.today = today
            self.now = london_instant(today, dt.time(12, 0))
        self.added: dict[str, int] = {"members": 0, "meetings": 0, "notes": 0, "rsvps": 0}
        self.members: dict[str, Member] = {}

    def load_members(self) -> None:
        for name, email, organisation, job_title in MEMBERS:
            member = find_member_by_email(email)
            if member is None:
                member = Member(
                    name=name,
                    email=email,
                    organisation=organisation,
                    job_title=job_title,
                    sector=WHERE[organisation][0],
                    region=WHERE[organisation][1],
                    is_organiser=email == ORGANISER_EMAIL,
                )
                db.session.add(member)
                self.added["members"] += 1
            self.members[email] = member
        db.session.flush()
        self.progress(
            f"Members: {len(MEMBERS)} in the demo network ({self._new(self.added['members'])}); "
            f"sign in as the organiser {ORGANISER_EMAIL}"
        )

    def series(self) -> MeetingSeries:
        series = db.session.scalar(select(MeetingSeries).where(MeetingSeries.slug == SERIES_SLUG))
        if series is None:
            series = MeetingSeries(name=SERIES_NAME, slug=SERIES_SLUG, description=SERIES_DESCRIPTION)
            db.session.add(series)
            db.session.flush()
        return series

    def meeting(self, plan: _MeetingPlan, series: MeetingSeries, label: str) -> Meeting:
        meeting = db.session.scalar(select(Meeting).where(Meeting.slug == plan.slug))
        created = meeting is None
        if meeting is None:
            starts_at = london_instant(plan.day, dt.time(15, 0))
            meeting = Meeting(
                series=series,
                slug=plan.slug,
                title=plan.title,
                theme=plan.theme,
                description=plan.description,
                starts_at=starts_at,
                ends_at=london_instant(plan.day, dt.time(17, 0)),
                timezone=ZONE_NAME,
                join_url=plan.join_url,
                capacity=plan.capacity,
                status=MeetingStatus.SCHEDULED,
                visibility=Visibility.PUBLIC,
                contact=self.members[CONTACT_EMAIL],
                published_at=min(self.now, starts_at - dt.timedelta(days=42)),
            )
            for position, talk in enumerate(plan.agenda):
                speaker = self.members.get(talk.speaker)
                meeting.agenda_items.append(
                    AgendaItem(
                        position=position,
                        start_time=talk.start,
                        title=talk.title,
                        speaker_name=speaker.name if speaker else "",
                        speaker_role=speaker.job_title if speaker else "",
                        speaker_organisation=speaker.organisation if speaker else "",
                    )
                )
            for position, (room_name, questions) in enumerate(plan.rooms):
                meeting.workshop_rooms.append(
                    WorkshopRoom(
                        position=position,
                        name=room_name,
                        questions=[WorkshopQuestion(position=n, text=text) for n, text in enumerate(questions)],
                    )
                )
            db.session.add(meeting)
            db.session.flush()
            self.added["meetings"] += 1
        self.progress(
            f"{label}: {meeting.title}, {when(meeting.starts_at, meeting.ends_at, meeting.timezone)} "
            f"({'added' if created else 'already there'})"
        )
        self.add_rsvps(meeting, plan)
        return meeting

    def add_rsvps(self, meeting: Meeting, plan: _MeetingPlan) -> None:
        existing = set(db.session.scalars(select(Rsvp.member_id).where(Rsvp.meeting_id == meeting.id)))
        # Answers to a past meeting were given before it; answers to the next one, today.
        answered_at = min(self.now, meeting.starts_at - dt.timedelta(days=10))
        for n, row in enumerate(plan.rsvps):
            member = self.members[row.email]
            if member.id in existing:
                continue
            columns = row._asdict()
            del columns["email"]
            db.session.add(
                Rsvp(meeting=meeting, member=member, answered_at=answered_at - dt.timedelta(hours=3 * n), **columns)
            )
            self.added["rsvps"] += 1
        db.session.flush()

    def notes(self, meeting: Meeting, plan: _MeetingPlan, next_meeting: Meeting) -> MeetingNotes:
        notes = db.session.scalar(select(MeetingNotes).where(MeetingNotes.meeting_id == meeting.id))
        created = notes is None
        if notes is None:
            published_at = min(self.now, meeting.ends_at + dt.timedelta(days=6))
            body = _notes_markdown(plan, next_meeting, self.members)
            revision = NoteRevision(
                number=1,
                title=f"Knowledge Exchange Network, meeting two: {meeting.title}",
                summary=(
                    "What Violence Reduction Units have learned about preventing violence, measuring "
                    "success and supporting young adults through the move to adulthood, with the "
                    "emerging practice members shared."
                ),
                body_markdown=body,
                body_html=render_markdown(body),
                author=self.members[ORGANISER_EMAIL],
                created_at=published_at,
            )
            notes = MeetingNotes(
                meeting=meeting,
                status=NotesStatus.PUBLISHED,
                visibility=Visibility.PUBLIC,
                published_at=published_at,
                notified_at=published_at,
                revisions=[revision],
            )
            notes.current_revision = revision
            db.session.add(notes)
            self.added["notes"] += 1
        known = set(db.session.scalars(select(ActionItem.text).where(ActionItem.meeting_id == meeting.id)))
        for text, owner, days_before, done in ACTIONS:
            if text not in known:
                db.session.add(
                    ActionItem(
                        meeting=meeting,
                        text=text,
                        owner=owner,
                        due_date=next_meeting.local_start.date() - dt.timedelta(days=days_before),
                        status=ActionStatus.DONE if done else ActionStatus.OPEN,
                    )
                )
        self.feedback(meeting, plan, published_at=notes.published_at or self.now)
        db.session.flush()
        self.progress(
            f"Notes: {meeting.title}, published {day((notes.published_at or utcnow()).astimezone(LONDON))} with "
            f"{len(ACTIONS)} actions ({'added' if created else 'already there'})"
        )
        return notes

    def feedback(self, meeting: Meeting, plan: _MeetingPlan, *, published_at: dt.datetime) -> None:
        """Answers from those who came, asked with the notes (so the outbox asks nobody about the demo again)."""
        meeting.feedback_asked_at = meeting.feedback_asked_at or published_at
        answered = set(
            db.session.scalars(select(MeetingFeedback.member_id).where(MeetingFeedback.meeting_id == meeting.id))
        )
        came = [self.members[row.email] for row in plan.rsvps if row.attended]
        for member, (score, differently, topics) in zip(came, FEEDBACK, strict=False):
            if member.id not in answered:
                answer = {"score": score, "do_differently": differently, "future_topics": topics}
                when = {"created_at": published_at, "updated_at": published_at}
                db.session.add(MeetingFeedback(meeting=meeting, member=member, **answer, **when))

    @staticmethod
    def _new(count: int) -> str:
        return f"{count} added" if count else "none added"

    def summary(self) -> str:
        added = self.added
        if not any(added.values()):
            news = "nothing new"
        else:
            news = (
                f"added {added['members']} members, {added['meetings']} meetings, "
                f"{added['notes']} set{'s' if added['notes'] != 1 else ''} of notes, {added['rsvps']} RSVPs"
            )
        return f"Demo data ready: {len(MEMBERS)} members, 2 meetings, 1 set of notes ({news})"


def load_demo(progress: Callable[[str], None] = print, *, today: dt.date | None = None) -> str:
    """Create the demo network if it is missing and say what was added. Flushes; the caller commits."""
    loader = _Loader(progress, today)
    loader.load_members()
    series = loader.series()
    meeting_two = _meeting_two_plan(most_recent_26_january(loader.today))
    next_plan = _next_meeting_plan(next_tuesday_9_march(loader.today))
    past = loader.meeting(meeting_two, series, "Meeting two")
    upcoming = loader.meeting(next_plan, series, "Next meeting")
    loader.notes(past, meeting_two, upcoming)
    return loader.summary()

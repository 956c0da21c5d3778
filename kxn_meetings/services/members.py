"""Adding, changing and removing members; reading member lists from CSV files."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..database import begin_write
from ..extensions import db
from ..models import LabelledEnum, Member, MemberSession, OutboxMessage, OutboxStatus, Region, Rsvp, Sector
from ..text import EMAIL_MAX, character_name, first_control, is_email_address
from .auth import end_all_sessions, find_member_by_email
from .errors import ServiceError
from .follows import export_rows as followed_series

NAME_MAX = 200

MAX_IMPORT_ROWS = 5000
DUPLICATE_EMAIL = "A member with this email address already exists."


class MemberError(ServiceError):
    """A rule about members was broken."""


DELETED_RECIPIENT = "(deleted member)"

Labelled = TypeVar("Labelled", bound=LabelledEnum)


def _usable_line(text: str, field: str) -> str:
    """A new member's name or organisation (`field`) as the member form would take it, one space between words, or
    the reason it cannot be."""
    if char := first_control(text):
        raise MemberError(f"The {field} contains {character_name(char)}: remove it.", field=field)
    text = " ".join(text.split())
    if len(text) > NAME_MAX:
        raise MemberError(f"The {field} is longer than {NAME_MAX} characters.", field=field)
    return text


def make_organiser(*, email: str, name: str, organisation: str = "") -> tuple[Member, bool]:
    email = email.strip()
    if not is_email_address(email):
        raise MemberError(f"{email!r} is not an email address", field="email")
    member = find_member_by_email(email)
    created = member is None
    if member is None:
        if not (usable_name := _usable_line(name, "name")):
            raise MemberError("Give the organiser's name with --name.", field="name")
        member = Member(email=email, name=usable_name, organisation=_usable_line(organisation, "organisation"))
        db.session.add(member)
    member.is_organiser = True
    member.active = True
    db.session.flush()
    return member, created


def email_taken(email: str, *, exclude_id: int | None = None) -> bool:
    query = select(Member.id).where(func.lower(Member.email) == email.strip().lower())
    if exclude_id is not None:
        query = query.where(Member.id != exclude_id)
    return db.session.scalar(query.limit(1)) is not None


@contextmanager
def _unique_email(message: str = DUPLICATE_EMAIL) -> Iterator[None]:
    """Writes inside a savepoint: a concurrent insert of the same address fails here, not at commit."""
    try:
        with db.session.begin_nested():
            yield
            db.session.flush()
    except IntegrityError:
        raise MemberError(message, field="email") from None


def add_member(
    *,
    name: str,
    email: str,
    organisation: str = "",
    job_title: str = "",
    sector: Sector | None = None,
    region: Region | None = None,
    is_organiser: bool = False,
    active: bool = True,
) -> Member:
    begin_write()
    email = email.strip()
    if email_taken(email):
        raise MemberError(DUPLICATE_EMAIL, field="email")
    member = Member(
        name=name.strip(),
        email=email,
        organisation=(organisation or "").strip(),
        job_title=(job_title or "").strip(),
        sector=sector,
        region=region,
        is_organiser=is_organiser,
        active=active,
    )
    with _unique_email():
        db.session.add(member)
    return member


def update_member(
    member: Member,
    *,
    acting: Member,
    name: str,
    email: str,
    organisation: str,
    job_title: str,
    sector: Sector | None,
    region: Region | None,
    is_organiser: bool,
    active: bool,
) -> None:
    """An organiser's change to a member. Organisers cannot lock themselves out."""
    if member.id == acting.id:
        if not is_organiser:
            raise MemberError(
                "You cannot remove your own organiser role. Ask another organiser to do it.", field="is_organiser"
            )
        if not active:
            raise MemberError("You cannot deactivate your own account. Ask another organiser to do it.", field="active")
    begin_write()
    email = email.strip()
    if email_taken(email, exclude_id=member.id):
        raise MemberError(DUPLICATE_EMAIL, field="email")
    was_active = member.active
    with _unique_email():
        member.name = name.strip()
        member.email = email
        member.organisation = (organisation or "").strip()
        member.job_title = (job_title or "").strip()
        member.sector, member.region = sector, region
        member.is_organiser = is_organiser
        member.active = active
    if was_active and not active:
        end_all_sessions(member)


def update_profile(
    member: Member,
    *,
    name: str,
    organisation: str,
    job_title: str,
    sector: Sector | None,
    region: Region | None,
    show_name_to_attendees: bool,
) -> None:
    """The member's own edit; only she can give or withdraw her consent to be named to others going."""
    member.name = name.strip()
    member.organisation = (organisation or "").strip()
    member.job_title = (job_title or "").strip()
    member.sector, member.region = sector, region
    member.show_name_to_attendees = show_name_to_attendees
    db.session.flush()


def deactivate(member: Member, *, acting: Member) -> None:
    """The member can no longer sign in; browsers already signed in are signed out."""
    if member.id == acting.id:
        raise MemberError("You cannot deactivate your own account. Ask another organiser to do it.")
    member.active = False
    end_all_sessions(member)
    db.session.flush()


def reactivate(member: Member) -> None:
    member.active = True
    db.session.flush()


def delete_account(member: Member) -> None:
    """Remove a member. Their RSVPs stay, anonymised, so meeting numbers stay right: the answer is kept, the
    comment and access needs (free text that may name or describe them) are cleared.

    Sessions, sign-in tokens, invitations, places in workshop rooms and scribe links with what they wrote go with
    the member (ON DELETE CASCADE; their words stay in notes only where an organiser kept them); RSVPs and notes
    revisions keep their row with the member link cleared (ON DELETE SET NULL). Mail not yet sent to them is
    dropped, so nothing more reaches someone who has left; mail already sent keeps its record (the invite
    page's counts) without their address or the message's text.
    """
    if member.is_organiser and member.active:
        others = db.session.scalar(
            select(func.count(Member.id)).where(
                Member.is_organiser.is_(True), Member.active.is_(True), Member.id != member.id
            )
        )
        if not others:
            raise MemberError(
                "You are the only organiser. Make another member an organiser before deleting your account.",
                field="email",
            )
    db.session.execute(
        update(Rsvp)
        .where(Rsvp.member_id == member.id)
        .values(comment="", access_needs="")
        .execution_options(synchronize_session=False)
    )
    mine = OutboxMessage.member_id == member.id
    db.session.execute(
        delete(OutboxMessage)
        .where(mine, OutboxMessage.status != OutboxStatus.SENT)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(OutboxMessage)
        .where(mine)
        .values(
            recipient=DELETED_RECIPIENT,
            text_body="",
            html_body="",
            calendar=None,
            calendar_method=None,
            last_error="",
        )
        .execution_options(synchronize_session=False)
    )
    db.session.delete(member)
    db.session.flush()


def personal_data(member: Member) -> dict[str, Any]:
    """Everything the site holds about one member, for their own download."""
    rsvps = db.session.scalars(
        select(Rsvp)
        .options(joinedload(Rsvp.meeting))
        .where(Rsvp.member_id == member.id)
        .order_by(Rsvp.answered_at, Rsvp.id)
    ).all()
    sessions = db.session.scalar(select(func.count(MemberSession.id)).where(MemberSession.member_id == member.id))
    return {
        "profile": {
            "name": member.name,
            "email": member.email,
            "organisation": member.organisation,
            "job_title": member.job_title,
            "sector": _label(member.sector),
            "region": _label(member.region),
            "name_shown_to_attendees": member.show_name_to_attendees,
            "organiser": member.is_organiser,
            "active": member.active,
            "has_password": bool(member.password_hash),
            "joined": member.created_at.isoformat(),
        },
        "series_followed": followed_series(member),
        "rsvps": [
            {
                "meeting": rsvp.meeting.title,
                "date": rsvp.meeting.local_start.isoformat(),
                "timezone": rsvp.meeting.timezone,
                "answer": rsvp.answer.value,
                "waiting_list": rsvp.is_waiting,
                "comment": rsvp.comment,
                "access_needs": rsvp.access_needs,
                "answered_at": rsvp.answered_at.isoformat(),
            }
            for rsvp in rsvps
        ],
        "sessions": sessions or 0,
    }


def _label(choice: LabelledEnum | None) -> str:
    return "" if choice is None else choice.label


# Sector and Region come back in a file this export wrote: the import reads labels as well as stored values.
EXPORT_HEADER = ("Name", "Email", "Organisation", "Job title", "Sector", "Region", "Organiser", "Active", "Joined")


def export_rows() -> Iterator[Sequence[Any]]:
    """Header then one row per member, ready for csvsafe.to_csv."""
    yield EXPORT_HEADER
    members = db.session.scalars(select(Member).order_by(func.lower(Member.name), Member.id))
    for m in members:
        yield (
            m.name,
            m.email,
            m.organisation,
            m.job_title,
            _label(m.sector),
            _label(m.region),
            m.is_organiser,
            m.active,
            m.created_at.date().isoformat(),
        )


def directory_counts() -> dict[str, int]:
    total, active, organisers = db.session.execute(
        select(
            func.count(Member.id),
            func.coalesce(func.sum(case((Member.active.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(case((Member.is_organiser.is_(True), 1), else_=0)), 0),
        )
    ).one()
    return {"all": total, "active": active, "inactive": total - active, "organisers": organisers}


# --- Importing a list of members from CSV -------------------------------------------------------------


class CsvImportError(ServiceError):
    """The file as a whole cannot be used; the message says why and what to do, next to the file field."""

    def __init__(self, message: str, field: str | None = "file") -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str
    email: str
    organisation: str = ""
    job_title: str = ""
    # As typed in the file (a stored value or a label, any case); check_rows says whether it names one.
    sector: str = ""
    region: str = ""

    def as_list(self) -> list[Any]:
        return [self.line, self.name, self.email, self.organisation, self.job_title, self.sector, self.region]

    @classmethod
    def from_list(cls, values: Any) -> ImportRow:
        """Rebuild a row carried through a form; anything not of the expected shape is a ValueError."""
        if not isinstance(values, list) or len(values) != 7:
            raise ValueError("not an import row")
        line, *texts = values
        if not isinstance(line, int) or isinstance(line, bool) or not all(isinstance(t, str) for t in texts):
            raise ValueError("not an import row")
        return cls(line, *texts)

    @property
    def sector_choice(self) -> Sector | None:
        return vocabulary_member(Sector, self.sector)

    @property
    def region_choice(self) -> Region | None:
        return vocabulary_member(Region, self.region)


def vocabulary_member(vocabulary: type[Labelled], typed: str) -> Labelled | None:
    """The member of a fixed vocabulary that a person typed, by its stored value or its label, in any case and
    spacing ("Third sector", "third_sector", "THIRD SECTOR"); None for blank or anything else."""
    key = " ".join(typed.replace("_", " ").split()).casefold()
    for choice in vocabulary:
        if key in (choice.value.replace("_", " "), choice.label.casefold()):
            return choice
    return None


@dataclass(frozen=True)
class RejectedRow:
    line: int
    name: str
    email: str
    reasons: tuple[str, ...]


@dataclass
class ImportCheck:
    good: list[ImportRow] = field(default_factory=list)
    bad: list[RejectedRow] = field(default_factory=list)


COLUMN_NAMES = {
    "name": "name",
    "full name": "name",
    "email": "email",
    "email address": "email",
    "e mail": "email",
    "e mail address": "email",
    "organisation": "organisation",
    "organization": "organisation",
    "job title": "job_title",
    "role": "job_title",
    "sector": "sector",
    "region": "region",
}
LIMITS = {"name": NAME_MAX, "email": EMAIL_MAX, "organisation": NAME_MAX, "job_title": NAME_MAX}
LABELS = {"name": "name", "email": "email address", "organisation": "organisation", "job_title": "job title"}
VOCABULARIES: dict[str, type[LabelledEnum]] = {"sector": Sector, "region": Region}


def _column_key(heading: str) -> str | None:
    words = heading.strip().lower().replace("_", " ").replace("-", " ").split()
    return COLUMN_NAMES.get(" ".join(words))


def _delimiter(header_line: str) -> str:
    """The header row decides: whichever of comma, semicolon or tab it uses most (comma if none)."""
    counts = {d: header_line.count(d) for d in ",;\t"}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_member_csv(data: bytes, *, max_rows: int = MAX_IMPORT_ROWS) -> list[ImportRow]:
    """Rows of a CSV file with a header row; cells trimmed, blank rows dropped, nothing checked yet."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvImportError(
            "The file is not UTF-8 text. In Excel, save it as \u201cCSV UTF-8 (Comma delimited)\u201d and try again."
        ) from None
    if "\x00" in text:
        raise CsvImportError("This does not look like a CSV file. Save the list as CSV and try again.")
    if not text.strip():
        raise CsvImportError("The file is empty.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.lstrip().splitlines()[0]))
    rows: list[ImportRow] = []
    columns: dict[str, int] | None = None
    last_line = 0
    try:
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = {}
                for index, heading in enumerate(cells):
                    key = _column_key(heading)
                    if key and key not in columns:
                        columns[key] = index
                for key in ("email", "name"):
                    if key not in columns:
                        raise CsvImportError(
                            f"The file has no \u201c{key}\u201d column. The first row must name the columns: "
                            "name, email, organisation, job title."
                        )
                continue
            if len(rows) >= max_rows:
                raise CsvImportError(
                    f"The file has more than {max_rows:,} members. Split it into files of at "
                    f"most {max_rows:,} rows and import them one after the other."
                )
            values = {key: (cells[index].strip() if index < len(cells) else "") for key, index in columns.items()}
            rows.append(
                ImportRow(
                    line,
                    values["name"],
                    values["email"],
                    values.get("organisation", ""),
                    values.get("job_title", ""),
                    values.get("sector", ""),
                    values.get("region", ""),
                )
            )
    except csv.Error as error:
        raise CsvImportError(f"Line {reader.line_num} could not be read as CSV ({error}).") from None
    if columns is None:
        raise CsvImportError("The file is empty.")
    return rows


def check_rows(rows: Sequence[ImportRow], existing_emails: Collection[str]) -> ImportCheck:
    """Split rows into those that can be imported and those that cannot, with every reason.

    `existing_emails` holds members' addresses in lower case.
    """
    result = ImportCheck()
    first_seen: dict[str, int] = {}
    for row in rows:
        reasons: list[str] = []
        values = {"name": row.name, "email": row.email, "organisation": row.organisation, "job_title": row.job_title}
        # Line and paragraph separators too: names go into email headers, which the outbox refuses them in.
        if char := next(filter(None, map(first_control, values.values())), None):
            reasons.append(f"contains {character_name(char)}: remove it")
        for key, value in values.items():
            if len(value) > LIMITS[key]:
                reasons.append(f"{LABELS[key]} is longer than {LIMITS[key]} characters")
        for key, vocabulary in VOCABULARIES.items():
            typed = getattr(row, key)
            if typed and vocabulary_member(vocabulary, typed) is None:
                reasons.append(
                    f"{key} \u201c{typed[:60]}\u201d is not one of: {', '.join(c.label for c in vocabulary)}"
                )
        if not row.name:
            reasons.append("name is missing")
        if not row.email:
            reasons.append("email address is missing")
        elif len(row.email) <= EMAIL_MAX and not first_control(row.email):
            if not is_email_address(row.email):
                reasons.append("email address is not valid")
            else:
                key = row.email.lower()
                if key in first_seen:
                    reasons.append(f"email address is already on line {first_seen[key]} of this file")
                else:
                    first_seen[key] = row.line
                if key in existing_emails:
                    reasons.append("already a member")
        if reasons:
            result.bad.append(RejectedRow(row.line, row.name, row.email, tuple(reasons)))
        else:
            result.good.append(row)
    return result


def member_emails() -> set[str]:
    """Every member's address in lower case (a network has hundreds, not millions, of members)."""
    return {email.lower() for email in db.session.scalars(select(Member.email))}


def preview_import(data: bytes, *, max_rows: int = MAX_IMPORT_ROWS) -> ImportCheck:
    return check_rows(read_member_csv(data, max_rows=max_rows), member_emails())


def import_members(rows: Sequence[ImportRow]) -> ImportCheck:
    """Add the rows that are still good now; `bad` lists those skipped (e.g. added since the preview)."""
    begin_write()
    result = check_rows(rows, member_emails())
    with _unique_email(
        "Some of these addresses were added by someone else meanwhile. Nothing was imported; "
        "please upload the file again."
    ):
        db.session.add_all(
            Member(
                name=row.name,
                email=row.email,
                organisation=row.organisation,
                job_title=row.job_title,
                sector=row.sector_choice,
                region=row.region_choice,
            )
            for row in result.good
        )
    return result

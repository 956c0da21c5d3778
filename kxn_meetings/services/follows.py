"""Who follows which series, and the signed follow and unfollow links that every email about a meeting of a series
carries. Below invitations and notices, which add the links to what they send; the rules of following are in
services.series."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Meeting, MeetingSeries, Member, SeriesFollow, StandingAnswer, parse_id
from ..signing import signature
from ..urls import external_url


def _signature(series_id: int, member_id: int) -> str:
    return signature(f"series-follow:{series_id}:{member_id}", size=16)


def member_token(series_id: int, member_id: int) -> str:
    """`<member id>-<signature>`: names one member for one series, cannot be forged, and opens nothing else."""
    return f"{member_id}-{_signature(series_id, member_id)}"


def member_by_token(series: MeetingSeries, token: str) -> Member | None:
    """The active member a follow or unfollow link names for this series, or None."""
    member_part, _, signature = token.partition("-")
    member_id = parse_id(member_part)
    if member_id is None or not hmac.compare_digest(_signature(series.id, member_id).encode(), signature.encode()):
        return None
    member = db.session.get(Member, member_id)
    return member if member is not None and member.active else None


@dataclass(frozen=True)
class SeriesLinks:
    """What an email about a meeting of a series says about following it, for one recipient."""

    series_name: str
    following: SeriesFollow | None
    follow_url: str
    unfollow_url: str

    @property
    def list_unsubscribe(self) -> str:
        """The List-Unsubscribe header's value: only a follower has something to stop."""
        return f"<{self.unfollow_url}>" if self.following is not None else ""


def follower_members(series_id: int, *, standing: StandingAnswer | None = None) -> list[Member]:
    """The active members following a series (only those with this standing answer, if given), in follow order."""
    query = (
        select(Member)
        .join(SeriesFollow, SeriesFollow.member_id == Member.id)
        .where(SeriesFollow.series_id == series_id, Member.active.is_(True))
        .order_by(SeriesFollow.id)
    )
    if standing is not None:
        query = query.where(SeriesFollow.standing == standing)
    return list(db.session.scalars(query))


def follows_of(series_id: int, member_ids: Sequence[int]) -> dict[int, SeriesFollow]:
    if not member_ids:
        return {}
    rows = db.session.scalars(
        select(SeriesFollow).where(SeriesFollow.series_id == series_id, SeriesFollow.member_id.in_(list(member_ids)))
    )
    return {row.member_id: row for row in rows}


def links_for(meeting: Meeting, members: Sequence[Member]) -> dict[int, SeriesLinks]:
    """Each member's follow links for the meeting's series (none when the meeting has no series)."""
    series = meeting.series
    if series is None:
        return {}
    following = follows_of(series.id, [m.id for m in members])
    links = {}
    for member in members:
        token = member_token(series.id, member.id)
        links[member.id] = SeriesLinks(
            series_name=series.name,
            following=following.get(member.id),
            follow_url=external_url("series.follow_by_link", ref=series.slug, token=token),
            unfollow_url=external_url("series.unfollow_by_link", ref=series.slug, token=token),
        )
    return links


def _follows(*where, load) -> list[SeriesFollow]:
    return list(
        db.session.scalars(select(SeriesFollow).where(*where).options(joinedload(load)).order_by(SeriesFollow.id))
    )


def followers(series: MeetingSeries) -> list[SeriesFollow]:
    """Who follows the series, with which standing answer, in the order they followed."""
    return _follows(SeriesFollow.series_id == series.id, load=SeriesFollow.member)


def followed_by(member: Member) -> list[SeriesFollow]:
    """The series a member follows, in the order she followed them."""
    return _follows(SeriesFollow.member_id == member.id, load=SeriesFollow.series)


def export_rows(member: Member) -> list[dict[str, str | bool]]:
    """The series a member follows, for her own data download."""
    return [
        {
            "series": follow.series.name,
            "standing_answer": follow.standing.label,
            "all_meetings_in_my_calendar": follow.in_feed,
            "since": follow.created_at.isoformat(),
        }
        for follow in followed_by(member)
    ]

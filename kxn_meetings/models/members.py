"""Members of the network, their sign-in sessions and one-time sign-in tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import LabelledEnum, TimestampMixin, UTCDateTime, stored_enum, utcnow


class Sector(LabelledEnum):
    """Where a member works: the network reports its reach by sector (README, "Sectors and regions")."""

    POLICE = "police"
    HEALTH = "health"
    LOCAL_AUTHORITY = "local_authority"
    VIOLENCE_REDUCTION_UNIT = "violence_reduction_unit"
    YOUTH_JUSTICE = "youth_justice"
    EDUCATION = "education"
    THIRD_SECTOR = "third_sector"
    ACADEMIA = "academia"
    GOVERNMENT = "government"
    OTHER = "other"


class Region(LabelledEnum):
    """Where a member works: the nine English regions, the other nations, UK-wide, or abroad."""

    NORTH_EAST = "north_east", "North East"
    NORTH_WEST = "north_west", "North West"
    YORKSHIRE_AND_THE_HUMBER = "yorkshire_and_the_humber", "Yorkshire and the Humber"
    EAST_MIDLANDS = "east_midlands", "East Midlands"
    WEST_MIDLANDS = "west_midlands", "West Midlands"
    EAST_OF_ENGLAND = "east_of_england", "East of England"
    LONDON = "london"
    SOUTH_EAST = "south_east", "South East"
    SOUTH_WEST = "south_west", "South West"
    WALES = "wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern_ireland", "Northern Ireland"
    NATIONAL = "national", "National (UK-wide)"
    OUTSIDE_UK = "outside_uk", "Outside the UK"


class Member(TimestampMixin, Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    organisation: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(200), default="")
    is_organiser: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Consent, off until the member turns it on: others going to a meeting see her name, not only her organisation.
    show_name_to_attendees: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Optional: a member says where she works, for the network's reach (Insights); None until she does.
    sector: Mapped[Sector | None] = mapped_column(stored_enum(Sector, "member_sector", length=30))
    region: Mapped[Region | None] = mapped_column(stored_enum(Region, "member_region", length=30))

    sessions: Mapped[list[MemberSession]] = relationship(
        back_populates="member", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("uq_members_email_lower", func.lower(email), unique=True),)

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Flask-Login stores the id of the MemberSession row, never the member id."""
        return getattr(self, "session_id", "")

    def __repr__(self) -> str:
        return f"<Member {self.id} {self.email}>"


class MemberSession(Model):
    """A signed-in browser. Signing out deletes the row, so a replayed cookie stops working."""

    __tablename__ = "member_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    member: Mapped[Member] = relationship(back_populates="sessions")


class LoginToken(Model):
    """A one-time sign-in link (and the short code sent with it). Only hashes are stored."""

    __tablename__ = "login_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(500), default="/")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    code_attempts: Mapped[int] = mapped_column(default=0)

    member: Mapped[Member] = relationship()


class RateLimitHit(Model):
    """One counted attempt; shared by every app process through the database."""

    __tablename__ = "rate_limit_hits"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_rate_limit_hits_key_created", "key", "created_at"),)

"""Files kept with the notes (slides, handouts): accepted by their content, stored under random names, listed and
removed."""

from __future__ import annotations

import io
import os
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import MeetingNotes, Member, NoteAttachment, utcnow
from ...text import without_controls
from ..errors import ServiceError


@dataclass(frozen=True)
class FileKind:
    label: str
    content_type: str
    extensions: tuple[str, ...]


PDF = FileKind("a PDF", "application/pdf", ("pdf",))
PNG = FileKind("a PNG image", "image/png", ("png",))
JPEG = FileKind("a JPEG image", "image/jpeg", ("jpg", "jpeg"))
DOCX = FileKind("a Word document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",))
PPTX = FileKind(
    "a PowerPoint presentation", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ("pptx",)
)
XLSX = FileKind("an Excel workbook", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",))
FILE_KINDS = (PDF, PNG, JPEG, DOCX, PPTX, XLSX)
BY_EXTENSION = {ext: kind for kind in FILE_KINDS for ext in kind.extensions}
ALLOWED_EXTENSIONS = ", ".join(f".{ext}" for ext in BY_EXTENSION)
# The folder inside an Office file that says which application made it.
OFFICE_FOLDERS = {"word/": DOCX, "ppt/": PPTX, "xl/": XLSX}


class UploadRefused(ServiceError):
    """The file cannot be kept; the message tells the organiser what to do."""


class UploadTooLarge(UploadRefused):
    pass


def attachments_of(notes: MeetingNotes | None) -> list[NoteAttachment]:
    if notes is None:
        return []
    return list(
        db.session.scalars(
            select(NoteAttachment)
            .where(NoteAttachment.notes_id == notes.id)
            .order_by(NoteAttachment.created_at, NoteAttachment.id)
        )
    )


def sniff(data: bytes) -> FileKind | None:
    """What the bytes are, judged by their content alone."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
            return None
        if "[Content_Types].xml" not in names:
            return None
        found = {kind for folder, kind in OFFICE_FOLDERS.items() if any(n.startswith(folder) for n in names)}
        return found.pop() if len(found) == 1 else None
    return None


def clean_filename(filename: str) -> str:
    """The name people see: no folders, no control characters, at most 200 characters, the extension kept."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = without_controls(unicodedata.normalize("NFC", name), invisible=True).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[:190]}.{ext[:9]}" if dot and len(ext) <= 9 else name[:200]
    return name


def check_upload(filename: str, data: bytes) -> tuple[str, FileKind]:
    """The cleaned name and the kind of file, or UploadRefused saying why not."""
    name = clean_filename(filename)
    if not name:
        raise UploadRefused("Choose a file to upload.")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    claimed = BY_EXTENSION.get(extension)
    if claimed is None:
        raise UploadRefused(f"“{name}” cannot be attached: only {ALLOWED_EXTENSIONS} files can be.")
    if not data:
        raise UploadRefused(f"“{name}” is empty.")
    limit_mb = current_app.config["NOTES_MAX_UPLOAD_MB"]
    if len(data) > limit_mb * 1024 * 1024:
        raise UploadTooLarge(f"“{name}” is larger than the {limit_mb} MB limit for attachments.")
    actual = sniff(data)
    if actual is None:
        raise UploadRefused(
            f"“{name}” is called .{extension} but its content is not {claimed.label}. "
            f"Only real {ALLOWED_EXTENSIONS} files can be attached."
        )
    if actual != claimed:
        raise UploadRefused(
            f"“{name}” is called .{extension} but its content is {actual.label}. "
            f"Rename it to .{actual.extensions[0]} if that is right, then upload it again."
        )
    return name, actual


def upload_dir() -> Path:
    return Path(current_app.config["NOTES_UPLOAD_DIR"])


def attachment_path(attachment: NoteAttachment) -> Path:
    return upload_dir() / attachment.stored_name


def attach(notes: MeetingNotes, filename: str, data: bytes, uploader: Member | None) -> NoteAttachment:
    """Check and store a file under a random name, and list it with the notes.

    The file is written before the row; if the transaction is rolled back the caller removes it.
    """
    name, kind = check_upload(filename, data)
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_hex(20)
    partial = folder / f".{stored}.part"
    partial.write_bytes(data)
    os.replace(partial, folder / stored)
    attachment = NoteAttachment(
        notes_id=notes.id,
        filename=name,
        stored_name=stored,
        content_type=kind.content_type,
        size=len(data),
        uploaded_by_id=uploader.id if uploader else None,
        created_at=utcnow(),
    )
    db.session.add(attachment)
    db.session.flush()
    return attachment


def remove_attachment(attachment: NoteAttachment) -> Path:
    """Delete the row; returns the file to delete once the transaction is committed."""
    path = attachment_path(attachment)
    db.session.delete(attachment)
    db.session.flush()
    return path


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"

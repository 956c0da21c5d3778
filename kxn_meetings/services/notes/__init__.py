"""The record of a meeting: notes written in Markdown, kept revision by revision, published and announced once; the
actions agreed, carried to the next meeting until done; the files kept with the notes.

Every function adds and flushes; the caller commits. One module per concern:
- common: the error every part raises, finding a meeting's notes, their table of contents;
- editing: the outline a draft starts from, saving, the drafts still being written;
- revisions: the history, restoring an old revision, comparing two;
- actions: the actions agreed, carried to the next meeting of the series;
- publishing: publishing and unpublishing, and the email that announces the notes;
- archive: who may read a meeting's notes, the archive and its search, the Atom feed;
- attachments: files kept with the notes.

Callers import the package (`from ..services import notes`); the names below are what they use.
"""

from .actions import CarriedActions, actions_of, carried_actions, set_action_status
from .archive import ArchiveEntry, archive_query, archive_years, atom_feed, can_read
from .attachments import (
    BY_EXTENSION,
    DOCX,
    UploadRefused,
    UploadTooLarge,
    attach,
    attachment_path,
    attachments_of,
    clean_filename,
    human_size,
    remove_attachment,
    sniff,
)
from .common import NotesError, Section, contents, notes_for
from .editing import MAX_ACTIONS, ActionRow, NotesInput, Prompt, SaveResult, drafts, outline, prompts_left, save
from .publishing import announce_update, publish, recipients, unpublish, why_not_ready
from .revisions import diff, restore, revision_by_number, revisions

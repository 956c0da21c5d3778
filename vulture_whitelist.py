"""Names that only frameworks, templates or the database use, for vulture (run by `make lint`), which sees none of
those callers. Every other unused name is dead code to remove."""

# Flask's app factory, found by `flask --app kxn_meetings` and gunicorn; Setting.help feeds the README table test.
create_app  # noqa
help  # noqa

# SQLAlchemy and Flask-SQLAlchemy read these: type decorators, the naming convention, pysqlite and psycopg settings.
impl  # noqa
cache_ok  # noqa
process_bind_param  # noqa
process_result_value  # noqa
metadata  # noqa
isolation_level  # noqa
autocommit  # noqa

# Flask-Login reads these off the login manager and the member.
login_view  # noqa
login_message  # noqa
login_message_category  # noqa
session_protection  # noqa
request_class  # noqa
get_id  # noqa
_login_user  # noqa

# html.parser.HTMLParser calls these.
handle_starttag  # noqa
handle_endtag  # noqa
handle_data  # noqa

# Form fields that only templates render.
confirm  # noqa
start_fold  # noqa
end_fold  # noqa
toc  # noqa

# Figures that only the attendees page shows.
no_reply  # noqa
came_maybe  # noqa
walk_ins  # noqa
no_shows  # noqa

# Columns kept as the record of what happened (shown on pages through templates, exported, or kept for audit).
cancelled_at  # noqa
room_id  # noqa
last_seen_at  # noqa
author_id  # noqa
uploaded_by_id  # noqa
proposed_start  # noqa
proposed_end  # noqa
sent_sequence  # noqa

# A meeting's description as rendered when it is saved, read only by the meeting page's template.
description_html  # noqa

# Yes/no tests of a vocabulary's members read only by templates (tests/test_vocabulary.py checks each is read).
is_update  # noqa
is_cancellation  # noqa
removes_from_calendar  # noqa
is_pending  # noqa
is_sent  # noqa
is_counter  # noqa
is_maybe  # noqa
is_declined  # noqa

# What an email says of its meeting beyond the time, read only by the email templates.
agenda_zone  # noqa
answer_by  # noqa

# Set by keyword when a message to members is logged, read by the log's template.
sent_by_id  # noqa
sent_by  # noqa

# Why the next meeting of a series is proposed on its date, read by the meeting form.
date_reason  # noqa

# Sectors and regions members choose from: listed to people (forms, CSV, Insights) by iterating the vocabulary.
POLICE  # noqa
HEALTH  # noqa
LOCAL_AUTHORITY  # noqa
VIOLENCE_REDUCTION_UNIT  # noqa
YOUTH_JUSTICE  # noqa
EDUCATION  # noqa
THIRD_SECTOR  # noqa
ACADEMIA  # noqa
GOVERNMENT  # noqa
OTHER  # noqa
NORTH_EAST  # noqa
NORTH_WEST  # noqa
YORKSHIRE_AND_THE_HUMBER  # noqa
EAST_MIDLANDS  # noqa
WEST_MIDLANDS  # noqa
EAST_OF_ENGLAND  # noqa
SOUTH_EAST  # noqa
SOUTH_WEST  # noqa
WALES  # noqa
SCOTLAND  # noqa
NORTHERN_IRELAND  # noqa
NATIONAL  # noqa
OUTSIDE_UK  # noqa

# What the Insights page's charts draw, read only by its template.
attendance_top  # noqa
sector_keys  # noqa
sectors_top  # noqa
regions_top  # noqa

# What series pages and emails show, read only by their templates.
is_series  # noqa
series_name  # noqa
follow_url  # noqa
notes_published  # noqa
more_past  # noqa

# What WTForms calls on a form's CSRF class and reads from its Meta.
generate_csrf_token  # noqa
validate_csrf_token  # noqa
csrf_class  # noqa

# What Flask calls on the app's session interface.
open_session  # noqa

# The DB-API 2.0 items of a column of cursor.description, and the attribute psycopg makes its cursors from.
type_code  # noqa
display_size  # noqa
internal_size  # noqa
precision  # noqa
scale  # noqa
null_ok  # noqa
cursor_factory  # noqa

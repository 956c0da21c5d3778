"""Email: every message is built from its outbox row and delivered by a worker. One module per concern:
- message: the MIME layout of every email;
- headers: Subject and address headers that every mail reader reads back as typed;
- smtp: the SMTP session (pipelined sending) over Flask-Mail's connection;
- delivery: claiming due messages under a lease, the delivery loop, retries and back-off, the console when no mail
  server is configured, and delivery right after a request's commit (development);
- sent_log: recording each message the server accepted as sent, at once.

Callers import the package (`from .mail import deliver_due`); the names below are what they use.
"""

from .delivery import QUEUED_IN_REQUEST, DeliveryReport, count_due, deliver_due, init_app, prepare_due
from .message import build_message, message_bytes, new_message_id

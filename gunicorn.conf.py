"""Production settings for gunicorn: `gunicorn 'kxn_meetings:create_app()'` run from this folder picks them up."""

import os

bind = os.environ.get("KXN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("KXN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("KXN_THREADS", "4"))
preload_app = False
max_requests = 5000
max_requests_jitter = 500
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("KXN_ACCESS_LOG", "-") or None
forwarded_allow_ips = os.environ.get("KXN_FORWARDED_ALLOW_IPS", "127.0.0.1")

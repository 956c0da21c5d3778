"""Production settings for gunicorn: `gunicorn 'kxn_meetings:create_app()'` run from this folder picks them up."""

import ctypes
import ctypes.util
import os

bind = os.environ.get("KXN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("KXN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("KXN_THREADS", "4"))
preload_app = False
# Workers are not recycled unless asked: a new worker pays for its imports and rebuilds its caches (calendar
# files, time-zone rules), seconds of CPU. KXN_MAX_REQUESTS recycles each after about that many requests.
max_requests = int(os.environ.get("KXN_MAX_REQUESTS", "0"))
max_requests_jitter = 500
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("KXN_ACCESS_LOG", "-") or None
forwarded_allow_ips = os.environ.get("KXN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Each thread that allocates gets a glibc malloc arena of its own, which keeps what it freed: with 4 threads that is
# several MiB more resident memory per worker for no gain in speed here (README, "What each web process keeps").
# KXN_MALLOC_ARENAS=0 leaves glibc's default.
MALLOC_ARENAS = int(os.environ.get("KXN_MALLOC_ARENAS", "1"))
M_ARENA_MAX = -8


def post_fork(server, worker):
    if MALLOC_ARENAS:
        try:
            ctypes.CDLL(ctypes.util.find_library("c")).mallopt(M_ARENA_MAX, MALLOC_ARENAS)
        except (OSError, AttributeError):
            server.log.info("Could not limit malloc arenas: not glibc")

"""A real SMTP server for tests (aiosmtpd), with switches for the failures mail must survive."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, _server, _session, envelope):
        with self.server.lock:
            if self.server.fail_next > 0:
                self.server.fail_next -= 1
                self.server.refused += 1
                return self.server.fail_reply
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.server.messages.append(message)
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.server.received.set()
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self.received = threading.Event()
        self.fail_next = 0
        self.refused = 0
        self.fail_reply = "451 4.3.0 Try again later"
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def refuse(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        with self.lock:
            self.fail_next = count
            self.fail_reply = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, received {len(self.messages)}")

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

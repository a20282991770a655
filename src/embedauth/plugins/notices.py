"""Expiry notices as JSON lines: the built-in plugin behind the ``notice_file`` setting.

``EmbedAuth(notice_file="/var/log/embedauth/notices.jsonl")`` (or ``EMBEDAUTH_NOTICE_FILE``;
``-`` for standard output) registers one :class:`JsonLinesNotices` that appends each notice the
expiry sweep sends, one JSON object per line (:func:`embedauth.registry.lifecycle.notice_document`)::

    {"notice": "credential.expiring", "at": "2026-05-01T09:00:00.000Z", "tenant": "site-1",
     "client_id": "…", "name": "Backup script", "credential": "secret", "credential_id": "…",
     "expires_at": "2026-05-08T09:00:00.000Z", "days_left": 7}

Each line is written with one ``write`` on a file opened for appending, so lines from several
processes never interleave. Nothing secret is in a notice.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from typing import TextIO

from embedauth.clock import Clock, utcnow
from embedauth.hooks import hookimpl
from embedauth.models import CertificateCredential, Registration, SecretCredential
from embedauth.registry.lifecycle import notice_document

__all__ = ["PLUGIN_NAME", "JsonLinesNotices"]

#: The name the plugin is registered under (once per plugin manager).
PLUGIN_NAME = "embedauth.plugins.notices"


class JsonLinesNotices:
    """Appends every expiry notice to ``target`` (a path, ``-`` for stdout, or an open text stream)."""

    def __init__(self, target: str | TextIO, clock: Clock) -> None:
        self._target = target
        self._clock = clock
        self._lock = threading.Lock()

    def _write(self, document: dict[str, object]) -> None:
        line = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if isinstance(self._target, str) and self._target != "-":
                with open(self._target, "a", encoding="utf-8") as out:
                    out.write(line)
            else:
                stream = sys.stdout if self._target == "-" else self._target
                assert not isinstance(stream, str)
                stream.write(line)
                stream.flush()

    @hookimpl
    def embedauth_credential_expiring(
        self,
        registration: Registration,
        credential: SecretCredential | CertificateCredential | None,
        days_left: int,
        expires_at: datetime,
    ) -> None:
        """One ``credential.expiring`` line."""
        self._write(notice_document(registration, credential, expires_at, days_left, utcnow(self._clock)))

    @hookimpl
    def embedauth_credential_expired(
        self,
        registration: Registration,
        credential: SecretCredential | CertificateCredential | None,
        expires_at: datetime,
    ) -> None:
        """One ``credential.expired`` line."""
        self._write(notice_document(registration, credential, expires_at, None, utcnow(self._clock)))

"""Keeping secrets out of text: the one secret type, the :class:`Redactor` and DSN masking.

The library has one secret type, :class:`pydantic.SecretStr`: settings, clients and tokens hold
secrets in it, so they never show in a ``repr``, ``str`` or f-string. Text that may contain a secret
(an error body, a message from a library underneath) goes through a :class:`Redactor` before it is
raised or logged.

A database DSN is redacted where it enters (:class:`~scayle_orderwise.store.PostgresStore`, the
store settings): libpq quotes the URI or the password token in its own parse errors (a ``%`` in a
password or a typo in the host is enough), so :func:`dsn_redactor` registers the password in every
form libpq may echo, and the whole DSN. :func:`mask_dsn` gives the form to show people, and
:func:`scrub_dsns` masks anything that looks like a DSN password in any text (the command line's
last line of defence).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from pydantic import SecretStr

__all__ = [
    "MASK",
    "SENSITIVE_HEADERS",
    "Redactor",
    "SecretStr",
    "as_secret",
    "dsn_has_password",
    "dsn_redactor",
    "mask_dsn",
    "scrub_dsns",
    "secret_value",
]

MASK = "***"
"""What a secret is replaced with."""

SENSITIVE_HEADERS = frozenset(
    {"authorization", "x-access-token", "cookie", "set-cookie", "proxy-authorization"}
)
"""HTTP headers whose values are credentials."""

# ``scheme://user:password@`` - the password runs to the last ``@`` of the authority, since an
# unencoded ``@`` in it is exactly the kind of typo libpq then echoes back.
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/?#@\s]*:)(?P<password>[^/?#\n]*)@")
# ``password=...`` in a key=value conninfo string or a URI query, quoted or not.
_KV_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'?|[^\s&]+)", re.IGNORECASE
)


def as_secret(value: str | SecretStr) -> SecretStr:
    """``value`` as a :class:`~pydantic.SecretStr` (as it is when it already is one)."""
    return value if isinstance(value, SecretStr) else SecretStr(str(value))


def secret_value(secret: str | SecretStr | None) -> str | None:
    """The plain value of ``secret`` (a ``SecretStr`` or a plain string), for sending only."""
    if secret is None:
        return None
    return secret.get_secret_value() if isinstance(secret, SecretStr) else str(secret)


class Redactor:
    """Replaces known secret values with ``***`` in text and nested JSON-like data. Thread-safe."""

    def __init__(self, secrets: Iterable[str | SecretStr | None] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: str | SecretStr | None) -> None:
        """Register one more secret (ignored when empty or shorter than 4 characters)."""
        value = secret_value(secret)
        if value is not None and len(value) >= 4:
            with self._lock:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for s in secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def data(self, value: Any) -> Any:
        """Redact strings inside dicts/lists (e.g. an error body that echoes a token)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers safe to log: credential headers masked, other values redacted."""
        return {
            k: (MASK if k.lower() in SENSITIVE_HEADERS else self(v)) for k, v in headers.items()
        }

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


def _dsn_passwords(dsn: str) -> list[str]:
    """Every password written in ``dsn`` (URI userinfo, ``password=`` pairs), as written."""
    found = [m["password"] for m in _URI_PASSWORD.finditer(dsn)]
    for m in _KV_PASSWORD.finditer(dsn):
        found.append(m["password"])
        found.append(m["password"].strip("'"))
    return [p for p in found if p]


def dsn_has_password(dsn: str) -> bool:
    """True when ``dsn`` carries a password (in the URI's user info or as ``password=``)."""
    return bool(_dsn_passwords(dsn))


def dsn_redactor(dsn: str | SecretStr) -> Redactor:
    """A :class:`Redactor` for a DSN: its passwords as written and decoded, and the DSN itself.

    Whatever libpq quotes back (the URI, the raw token with a bad ``%`` escape, the decoded
    password) is then masked. A DSN without a password registers nothing but itself.
    """
    text = secret_value(dsn) or ""
    passwords = _dsn_passwords(text)
    redactor = Redactor()
    for password in passwords:
        redactor.add(password)
        redactor.add(unquote(password, errors="replace"))
    if passwords:
        redactor.add(text)
    return redactor


def mask_dsn(dsn: str | SecretStr) -> str:
    """``dsn`` with its password masked, for messages (URI and key=value forms)."""
    return scrub_dsns(secret_value(dsn) or "")


def scrub_dsns(text: str) -> str:
    """Mask every DSN password in ``text`` (``scheme://user:***@``, ``password=***``)."""
    text = _URI_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)

"""Who may use the dashboard: HTTP Basic credentials from the environment, checked in constant time.

The password comes only from ``SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD``; without one the
dashboard is closed (403), unless the app was built ``open`` (the loopback sandbox). Forms carry a
token derived from the password and the user name, so another site cannot post an action with the
browser's remembered credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["ANONYMOUS", "DashboardAuth"]

ANONYMOUS = "sandbox visitor"


class DashboardAuth:
    """Checks ``Authorization: Basic`` against one configured user; never shows the password."""

    def __init__(
        self, username: str | None, password: str | None, *, open_access: bool = False
    ) -> None:
        self.username = username or ""
        self._password = password
        self.open_access = open_access
        seed = (password or secrets.token_hex(32)).encode()
        self._form_key = hashlib.sha256(b"scayle-orderwise dashboard forms\0" + seed).digest()

    def __repr__(self) -> str:
        mode = "open" if self.open_access else ("closed" if self._password is None else "basic")
        return f"DashboardAuth(username={self.username!r}, mode={mode})"

    @property
    def enabled(self) -> bool:
        """True when someone can get in (open, or a password is configured)."""
        return self.open_access or self._password is not None

    def user(self, authorization: str | None) -> str | None:
        """The signed-in user name, or ``None`` when the credentials are missing or wrong."""
        if self.open_access:
            return ANONYMOUS
        if self._password is None or not authorization:
            return None
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        expected = f"{self.username}:{self._password}".encode()
        if not hmac.compare_digest(decoded, expected):
            return None
        return self.username

    def form_token(self, user: str) -> str:
        """The token the dashboard's forms carry for ``user``."""
        return hmac.new(self._form_key, user.encode(), hashlib.sha256).hexdigest()

    def check_form_token(self, user: str, token: str | None) -> bool:
        """True when ``token`` was issued for ``user`` by this dashboard."""
        return bool(token) and hmac.compare_digest(self.form_token(user), str(token))

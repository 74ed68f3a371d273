"""Secrets never reach an error, a repr or a log: DSNs are redacted where they enter (issue 11 §5).

The PostgreSQL cases raise real psycopg errors: libpq quotes the URI or the password token in its
parse errors, so each DSN below carries a password that must not come out again.
"""

from __future__ import annotations

import logging

import pytest

from scayle_orderwise.config import ConnectorSettings, StoreSettings
from scayle_orderwise.errors import StoreError
from scayle_orderwise.redaction import (
    Redactor,
    SecretStr,
    dsn_has_password,
    dsn_redactor,
    mask_dsn,
    scrub_dsns,
)

PASSWORD = "s3cretPW"

BAD_DSNS = [
    pytest.param(f"postgresql://u:{PASSWORD}%zz@127.0.0.1:1/x", id="bad-percent-escape"),
    pytest.param(f"postgresql://u:{PASSWORD} x@127.0.0.1:1/x", id="space-in-password"),
    pytest.param(f"postgresql://u:{PASSWORD}@[::1:5432/x", id="host-typo-ipv6"),
    pytest.param(f"postgresql://u:{PASSWORD}@127.0.0.1:1/x", id="nothing-listening"),
    pytest.param(f"postgresql://u:{PASSWORD}@127.0.0.1:1/x?sslmode=bogus", id="bad-option"),
    pytest.param(f"host=127.0.0.1 port=1 password='{PASSWORD} x", id="conninfo-unterminated"),
    pytest.param(f"host=127.0.0.1 port=1 user=u password={PASSWORD}", id="conninfo"),
]


def _chain(exc: BaseException | None) -> str:
    """The text of an exception and of everything it was raised from or during."""
    text = ""
    while exc is not None:
        text += f"{type(exc).__name__}: {exc!s} {exc!r}\n"
        exc = exc.__cause__ or exc.__context__
    return text


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_libpq_errors_never_show_the_password(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    from scayle_orderwise.store import PostgresStore

    caplog.set_level(logging.DEBUG)
    store = PostgresStore(dsn, connect_timeout=2)
    with pytest.raises(StoreError) as info:
        store.counts()
    text = _chain(info.value) + repr(store) + caplog.text
    assert PASSWORD not in text
    assert dsn not in text
    assert "PostgreSQL" in str(info.value)  # still says what failed


def test_a_server_refusal_names_the_problem_but_not_the_password(pg_dsn: str) -> None:
    from urllib.parse import urlsplit

    from scayle_orderwise.store import PostgresStore

    parts = urlsplit(pg_dsn)
    user = parts.username or "postgres"
    dsn = f"postgresql://{user}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}/no_such_db_h4"
    with pytest.raises(StoreError) as info:
        PostgresStore(dsn, connect_timeout=5).counts()
    assert "no_such_db_h4" in str(info.value)
    assert PASSWORD not in _chain(info.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:pw%zz@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),  # an unencoded @
        ("postgresql://u:pw@[::1:5432/x", "postgresql://u:***@[::1:5432/x"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),  # nothing to hide
        ("host=db password='a b' user=u", "host=db password=*** user=u"),
        ("host=db password=abc user=u", "host=db password=*** user=u"),
        ("postgresql://db/x?user=u&password=abc&sslmode=require", None),
    ],
)
def test_mask_dsn(dsn: str, shown: str | None) -> None:
    masked = mask_dsn(dsn)
    if shown is not None:
        assert masked == shown
    for secret in ("pw%zz", "p@ss", "a b", "abc"):
        assert secret not in masked or secret not in dsn


def test_dsn_redactor_masks_every_form_libpq_echoes() -> None:
    dsn = "postgresql://u:caf%C3%A9-secret@db/x"
    redact = dsn_redactor(dsn)
    assert redact(f'bad token "caf%C3%A9-secret" in "{dsn}"') == 'bad token "***" in "***"'
    assert redact("decoded: café-secret") == "decoded: ***"
    assert dsn_redactor("postgresql://u@db/x")("postgresql://u@db/x") == "postgresql://u@db/x"
    assert dsn_has_password(dsn) and not dsn_has_password("sqlite:///ledger.db")


def test_scrub_dsns_in_free_text() -> None:
    text = "failed: postgresql://app:hunter22@db.internal/ledger and password=hunter22 again"
    assert "hunter22" not in scrub_dsns(text)
    assert "postgresql://app:***@db.internal/ledger" in scrub_dsns(text)


def test_store_settings_never_show_a_password_even_when_the_url_is_malformed() -> None:
    for url in ("postgresql://u:pw-9x@[::1:5432/x", "postgresql://u:pw-9x@db/x"):
        store = StoreSettings(url=url)
        assert "pw-9x" not in repr(store) and "pw-9x" not in store.display_url
        settings = ConnectorSettings(store=store)
        assert "pw-9x" not in repr(settings) and "pw-9x" not in str(settings)


def test_redactor_takes_secretstr() -> None:
    redactor = Redactor([SecretStr("token-123"), "plain-456", None])
    assert redactor("token-123 plain-456") == "*** ***"


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_the_rate_ledger_never_shows_the_password(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    from scayle_orderwise.store import PostgresStore
    from scayle_orderwise.store.shared_budget import SharedRateBudget

    caplog.set_level(logging.DEBUG)
    budget = SharedRateBudget.for_store(PostgresStore(dsn, connect_timeout=2))
    assert budget is not None
    with pytest.raises(StoreError) as info:
        budget.reserve("ordersWrite")  # the ledger connects on its own, before the store
    text = _chain(info.value) + repr(budget) + caplog.text
    assert PASSWORD not in text
    assert dsn not in text
    assert "PostgreSQL" in str(info.value)

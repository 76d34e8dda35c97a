"""Passwords of storage URLs never shown: search.redact."""

from __future__ import annotations

import pytest

from search.redact import MASK, redact_text, redact_url


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg2://search:s3cr3t@127.0.0.1:5432/searchdb",
     "postgresql+psycopg2://search:***@127.0.0.1:5432/searchdb"),
    ("mysql+pymysql://root:pw@db.example.org/optuna?charset=utf8mb4",
     "mysql+pymysql://root:***@db.example.org/optuna?charset=utf8mb4"),
    ("postgresql://:pw@h/db", "postgresql://:***@h/db"),  # no user
    ("postgresql://u:p%40ss%2Fw@h/db", "postgresql://u:***@h/db"),  # %-escaped
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # raw '@' in the password
    ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),  # raw '/' in the password
    ("postgresql://u:my pw@h/db", "postgresql://u:***@h/db"),  # raw space
    ("postgresql://u:pw@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
    ("postgresql://u:pw@h", "postgresql://u:***@h"),
    ("postgresql://u@h/db?password=pw&sslmode=require",
     "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://u@h/db?sslmode=require&PASSWORD=pw",
     "postgresql://u@h/db?sslmode=require&PASSWORD=***"),
    ("mysql://u@h/db?passwd=pw", "mysql://u@h/db?passwd=***"),
    ("postgresql://u:pw@h/db?password=pw2", "postgresql://u:***@h/db?password=***"),
    ("postgresql://u:pw@h/db?application_name=a@b", "postgresql://u:***@h/db?application_name=a@b"),
    ("--storage=postgresql://u:pw@h/db", "--storage=postgresql://u:***@h/db"),
])
def test_redact_url_hides_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent: a stored URL compares equal


@pytest.mark.parametrize("url", [
    "postgresql://u@h/db",  # no password
    "postgresql://h:5432/db",  # host:port is not user:password
    "postgresql://h/db",
    "postgresql://u:@h/db",  # empty password: nothing to hide (and nothing to ask for)
    "sqlite:///runs/a/optuna.db",
    "sqlite:////abs/pa:th@odd/optuna.db",  # ':' and '@' in a path are not user info
    "sqlite:///:memory:",
    "journal:optuna.journal",
    "journal:/runs/x:y@z/optuna.journal",
    "",
    "no url here: user:pw@host",
])
def test_redact_url_leaves_secret_free_strings_alone(url: str) -> None:
    assert redact_url(url) == url
    assert MASK not in redact_url(url)


def test_redact_url_in_running_text() -> None:
    text = "tried postgresql://a:x1@h1/db and mysql://b:x2@h2/db\nthen gave up"
    assert redact_url(text) == ("tried postgresql://a:***@h1/db and mysql://b:***@h2/db\n"
                                "then gave up")


def test_redact_text_scrubs_every_form_of_the_secret() -> None:
    secret = "p@ss w/rd"
    text = (f"failed for {secret!r}; quoted p%40ss%20w%2Frd, path-quoted p%40ss%20w/rd, "
            f"plus-quoted p%40ss+w%2Frd; url postgresql://u:p%40ss%20w%2Frd@h/db")
    out = redact_text(text, [secret])
    for form in (secret, "p%40ss%20w%2Frd", "p%40ss%20w/rd", "p%40ss+w%2Frd"):
        assert form not in out
    assert out.count(MASK) == 5
    assert "postgresql://u:***@h/db" in out


def test_redact_text_takes_a_secret_as_it_stands_in_the_url() -> None:
    """The password copied out of a URL may still be %-escaped; drivers show it unescaped."""
    assert redact_text('auth failed for "p@ss"', ["p%40ss"]) == 'auth failed for "***"'


def test_redact_text_ignores_empty_secrets_and_leaves_other_text() -> None:
    text = 'connection to server at "127.0.0.1", port 1 failed: Connection refused'
    assert redact_text(text, ["", "s3cr3t"]) == text
    assert redact_text(text, []) == text


def test_longer_forms_are_replaced_whole() -> None:
    # "a b" quoted is "a%20b"; replacing "a" first would leave "***%20b"
    assert redact_text("x a%20b y", ["a b"]) == "x *** y"

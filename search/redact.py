"""Keep secrets out of run.json, logs and messages: storage URLs lose their passwords.

A ``--storage postgresql://user:password@host/db`` URL is the one secret a run is given. It
must reach the database driver intact, but everything that is shown or kept (run.json, the
recorded argv, log lines, error messages) gets :func:`redact_url`'s form instead, with the
password replaced by :data:`MASK`. The mask is fixed, not a hash, so a later resume can
tell that a stored URL was redacted (``MASK in value``) and ask for the password again,
and compare ``redact_url(given) == stored`` to check it is the same storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

__all__ = ["MASK", "redact_text", "redact_url"]

MASK = "***"

# scheme://user:PASSWORD@host... anywhere in the string (so "--storage=URL" and URLs inside
# messages are caught too). The user is SQLAlchemy's (anything but ':' and '/'), so sqlite:///
# paths, whose authority is empty, never match. The password is taken up to the first '@'
# after which a plain host follows (no further '@' before '/', '?', '#', whitespace or the
# end): that covers both readings of an unescaped '@' or '/' in a password (SQLAlchemy splits
# at the first '@', urllib at the last), and a password with a raw space. Newlines end it.
_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])"
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/\s]*:)"
    r"(?P<pw>[^\n]*?)"
    r"(?=@[^\s/?#@]*(?:[/?#\s]|$))"
)
# ...?password=PASSWORD&...: libpq (psycopg2) and MySQL drivers take it from the query too.
_QUERY_PW = re.compile(r"(?i)(?P<key>[?&;](?:password|passwd)=)(?P<pw>[^&#\s]+)")


def redact_url(url: str) -> str:
    """``url`` with its password (in the user info or a ``password=`` query field) replaced
    by :data:`MASK`; everything else, and strings that hold no password (``sqlite:///…``
    paths, ``journal:…``, URLs without a password), unchanged. Idempotent.

    Works on any text that contains URLs, so a whole ``--storage=URL`` argument or a message
    quoting a URL can be passed as is. Errs towards hiding too much: in a malformed URL with
    an ``@`` in its query, the part up to that ``@`` counts as the password, as SQLAlchemy
    itself would read it.
    """
    if not isinstance(url, str):  # callers pass option values through; keep non-strings
        return url
    out = _USERINFO.sub(lambda m: m["head"] + (MASK if m["pw"] else ""), url)
    return _QUERY_PW.sub(lambda m: m["key"] + MASK, out)


def _forms(secret: str) -> set[str]:
    """How ``secret`` can appear in a message: raw, URL-quoted (path, query and ``+`` styles)
    and, if it was given quoted (as it stands in a URL), unquoted."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    forms.add(unquote(secret))
    return {f for f in forms if f}


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` (an exception message, a log line) with every secret replaced by :data:`MASK`.

    Driver messages are not under our control, so rather than trusting that they never quote
    the password, callers scrub it: each secret in its raw, URL-quoted and unquoted forms
    (longest first, so that a form containing another is replaced whole), and any URL in the
    text via :func:`redact_url`. Empty secrets are ignored.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _forms(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return redact_url(text)

"""Secret scrubbing: what the engines' errors, the log records and the sinks' messages hide.

One place knows what a password in a URL looks like; the warehouse, :mod:`mlmon.logs` and
:mod:`mlmon.sinks` import it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def scrub_url(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


#: the password of a URL as written (``user:password@``, ``?password=``, a token parameter such as Databricks'
#: ``access_token`` or Spark Connect's ``;token=``), spaces and stray ``%`` included: libpq quotes such a
#: token in its error
_URL_PASSWORD_VALUE = re.compile(
    r"://[^:/@\s]*:([^@]+)@|[?&;](?:password|access_token|token|private_key_passphrase)=([^&;#\s]+)", re.IGNORECASE
)


def url_password_forms(url: str) -> list[str]:
    """The passwords in ``url`` as written and percent-decoded (none too short to replace safely)."""
    from urllib.parse import unquote

    found = [p for m in _URL_PASSWORD_VALUE.finditer(url) for p in m.groups() if p]
    return sorted({form for p in found for form in (p, unquote(p)) if len(form) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (in the order given: longest first, so that no part of one is
    left) and any URL's ``user:password@`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return scrub_url(text)

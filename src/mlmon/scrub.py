"""Secret scrubbing: what the engines' errors, the log records and the sinks' messages hide.

One place knows what a password in a URL looks like; the warehouse, :mod:`mlmon.logs` and
:mod:`mlmon.sinks` import it from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# a password may hold an unencoded ``@`` (``user:pa@ss@host``): the user part ends at the last ``@`` of the
# URL's run of non-space characters (hiding a host that holds one too is the safe side)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)\S*@")


def scrub_url(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@host`` in ``text``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


#: the password of a URL as written (``user:password@``, ``?password=``, a token parameter such as Databricks'
#: ``access_token`` or Spark Connect's ``;token=``), spaces and stray ``%`` included: libpq quotes such a
#: token in its error
_URL_PASSWORD_VALUE = re.compile(r"[?&;](?:password|access_token|token|private_key_passphrase)=([^&;#\s]+)",
                                 re.IGNORECASE)
_URL_USER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:")


def _userinfo_password(url: str) -> str | None:
    """The password of ``scheme://user:password@host...`` as written. It may hold unencoded ``@``, ``/``,
    ``?`` or ``#``: the user part ends at the last ``@`` before the query (or of the URL, when the query holds
    none), since a host never holds one."""
    match = _URL_USER.match(url)
    if match is None:
        return None
    rest = url[match.end():]
    at = rest.rfind("@")
    query = rest.find("?")
    if 0 <= query < at and "@" in rest[:query]:  # the query holds an ``@`` too: the user part ends before it
        at = rest.rfind("@", 0, query)
    return rest[:at] if at > 0 else None
#: where a driver may cut a password that holds them unencoded, and quote one of the pieces in its error
#: (libpq ends the user part at the first ``@``: ``failed to resolve host 'rest-of-password@host'``)
_PASSWORD_CUTS = re.compile(r"[@:/?#%]")


def url_password_forms(url: str) -> list[str]:
    """The passwords in ``url`` as written and percent-decoded, and the pieces of them between characters a
    URL parser may stop at (``@``, ``:``, ``/``, ``?``, ``#``, ``%``), none too short to replace safely."""
    from urllib.parse import unquote

    found = [p for m in _URL_PASSWORD_VALUE.finditer(url) for p in m.groups() if p]
    if (password := _userinfo_password(url)) is not None:
        found.append(password)
    forms = {form for p in found for form in (p, unquote(p))}
    pieces = {piece for form in forms for piece in _PASSWORD_CUTS.split(form)}
    return sorted({f for f in forms | pieces if len(f) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (in the order given: longest first, so that no part of one is
    left) and any URL's ``user:password@`` replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return scrub_url(text)

"""Email addresses (邮箱): lowercase, validation, free-mail versus corporate domain."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from cleaning.text import normalize_text

_FREE_FILE = Path(__file__).parent / "resources" / "free_mail_domains.csv"
# pragmatic RFC 5322 subset: dot-atom local part, LDH labels, alphabetic TLD of 2+ letters
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"
)
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s;,/]+")  # several addresses in one field: the first is used
_ANGLE = re.compile(r"<([^<>]+)>")  # "张伟 <zhangwei@x.com>"


class EmailResult(NamedTuple):
    """A normalized email, its domain, free-mail flag and validity."""

    email: str | None
    domain: str | None
    is_free: bool | None
    valid: bool


@lru_cache(maxsize=1)
def free_mail_domains() -> frozenset[str]:
    """Free-mail domains shipped in ``resources/free_mail_domains.csv``.

    Returns:
        Lowercase domains (qq.com, 163.com, gmail.com …).
    """
    lines = _FREE_FILE.read_text(encoding="utf-8").splitlines()[1:]  # skip the header
    return frozenset(x.strip().lower() for x in lines if x.strip())


@lru_cache(maxsize=500_000)
def normalize_email(text: str | None) -> EmailResult:
    """Normalize and validate one email address.

    Full-width characters (＠, ．) are folded by NFKC, ``mailto:`` and display names are
    removed, the whole address is lowercased and checked against a practical RFC 5322 subset.
    When a field holds several addresses the first one is used.

    Args:
        text: Raw email text.

    Returns:
        An :class:`EmailResult`; invalid addresses have ``email=None`` and ``valid=False``.

    Example:
        >>> normalize_email(" Zhang.Wei＠Huawei.COM ")
        EmailResult(email='zhang.wei@huawei.com', domain='huawei.com', is_free=False, valid=True)
    """
    return email_from_normalized(normalize_text(text))


def email_from_normalized(norm: str | None) -> EmailResult:
    """:func:`normalize_email` for a text already through ``normalize_text`` (bulk callers).

    Args:
        norm: ``normalize_text`` of the raw email text.

    Returns:
        The same :class:`EmailResult` as ``normalize_email`` on the raw text.
    """
    if norm is None:
        return EmailResult(None, None, None, False)
    m = _ANGLE.search(norm)
    if m:
        norm = m.group(1)
    norm = _MAILTO.sub("", norm)
    candidate = _SEPARATORS.split(norm.strip())[0].lower().rstrip(".")
    if not _EMAIL.match(candidate) or ".." in candidate:
        return EmailResult(None, None, None, False)
    domain = candidate.rsplit("@", 1)[1]
    return EmailResult(candidate, domain, domain in free_mail_domains(), True)

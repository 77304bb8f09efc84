"""Find URLs, emails, hashtags, @mentions and dates; dates are normalized to ISO 8601.

Matching runs in that order and each kind's matches are blanked before the next
runs, so an email's ``@`` is not a mention and a URL's ``#fragment`` not a hashtag.

Dates are read from the formats below. The regex already splits a match into
year, month and day, so :class:`datetime.date` only has to validate them; a
general parser (dateutil's fuzzy mode) would guess missing fields instead.

* ISO 8601: ``2026-11-27``, ``2026-11-27T10:30:00Z`` (the date part is kept)
* ``2026/11/27``
* ``27 Nov 2026``, ``27th November 2026``, ``27. November 2026``
* ``Nov 27, 2026``, ``November 27th 2026``
* ``27/11/2026``, ``27.11.2026``, ``27-11-2026``: day first; month first only when
  that is the one valid reading (``11/27/2026``). ``03/04/2026`` is 3 April.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from notepipe.stages import StageContext

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY_SUFFIX = r"(?:st|nd|rd|th)?"

_URL = re.compile(r"""(?:\bhttps?://|\bwww\.)[^\s<>"'`]+""", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])")
_HASHTAG = re.compile(r"(?<![\w#&/])#(\w*[^\W\d_]\w*)")
_MENTION = re.compile(r"(?<![\w@/])@(\w{1,64})")
# A date starts with a digit or a month name's first letter. Checking that character
# first lets the scan pass over every other position at once, instead of trying all
# five forms there (1.5-2.7 -> 1.0-1.7 ms on a 16 KiB note; same matches, see the tests).
_DATE_LEAD = r"(?=[\d" + "".join(sorted({name[0] for name in _MONTHS})) + r"])"
_DATE_FORMS = rf"""
    (?<![\w/.-])(?:
        (?P<iso_y>\d{{4}})-(?P<iso_m>\d{{2}})-(?P<iso_d>\d{{2}})
            (?:[T\ ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?(?:Z|[+-]\d{{2}}(?::?\d{{2}})?)?)?
      | (?P<ymd_y>\d{{4}})/(?P<ymd_m>\d{{1,2}})/(?P<ymd_d>\d{{1,2}})
      | (?P<dmy_d>\d{{1,2}}){_DAY_SUFFIX}\.?\s+(?:of\s+)?(?P<dmy_m>{_MONTH}),?\s+(?P<dmy_y>\d{{4}})
      | (?P<mdy_m>{_MONTH})\s+(?P<mdy_d>\d{{1,2}}){_DAY_SUFFIX},?\s+(?P<mdy_y>\d{{4}})
      | (?P<num_a>\d{{1,2}})(?P<sep>[/.-])(?P<num_b>\d{{1,2}})(?P=sep)(?P<num_y>\d{{4}})
    )(?![\w/-]|\.\d)
    """
_DATE = re.compile(_DATE_LEAD + _DATE_FORMS, re.IGNORECASE | re.VERBOSE)
_URL_TRAILING = ".,;:!?'\")]}"

# What each kind cannot match without. A note without it skips that kind's scan (each
# scan of a 16 KiB note costs 0.7-2.6 ms); the result is the same, since the guard
# is a literal every match contains (every date form has a four-digit year).
_URL_GUARD = re.compile(r"://|www\.", re.IGNORECASE)
_DATE_GUARD = re.compile(r"\d{4}")


def _trim_url(url: str) -> str:
    """Drop sentence punctuation after a URL, keeping balanced parentheses (wiki links)."""
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    spans = list(spans)
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _month(written: str) -> int:
    """The number of a month name as the date regex matched it (``Nov.``, ``SEPT``).

    The regex compares case-insensitively the way :mod:`re` does, which also equates
    U+017F (long s) with ``s`` and U+0131/U+0130 (dotless and dotted I) with ``i``;
    ``str.lower`` does not, so a name it does not find is looked up with the regex's
    own comparison (a date written with a long s, ``\u017fep 3, 2026``).
    """
    name = written.rstrip(".")
    number = _MONTHS.get(name.lower())
    if number is not None:
        return number
    for key, number in _MONTHS.items():
        if re.fullmatch(key, name, re.IGNORECASE):
            return number
    raise ValueError(f"{written!r} is no month name the date regex matches")


def _to_date(match: re.Match[str]) -> date | None:
    g = match.groupdict()
    if g["iso_y"]:
        year, month, day = int(g["iso_y"]), int(g["iso_m"]), int(g["iso_d"])
    elif g["ymd_y"]:
        year, month, day = int(g["ymd_y"]), int(g["ymd_m"]), int(g["ymd_d"])
    elif g["dmy_y"]:
        year, month, day = int(g["dmy_y"]), _month(g["dmy_m"]), int(g["dmy_d"])
    elif g["mdy_y"]:
        year, month, day = int(g["mdy_y"]), _month(g["mdy_m"]), int(g["mdy_d"])
    else:
        first, second, year = int(g["num_a"]), int(g["num_b"]), int(g["num_y"])
        # Day first (27/11/2026) unless only the US reading is a valid date (11/27/2026).
        day, month = (second, first) if second > 12 >= first else (first, second)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _normalize_email(email: str) -> str:
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def find_urls(text: str) -> list[tuple[str, tuple[int, int]]]:
    found = []
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if "." in url.split("//", 1)[-1]:
            found.append((url, (match.start(), match.start() + len(url))))
    return found


def extract_entities(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"urls", "emails", "hashtags", "mentions", "dates"}`` in order of appearance.

    Each list holds distinct values (case-insensitively); a date is
    ``{"text": as written, "date": "YYYY-MM-DD"}``; impossible dates are skipped.
    """
    text = ctx.text
    urls = find_urls(text) if _URL_GUARD.search(text) else []
    text = _blank(text, (span for _, span in urls))
    emails = list(_EMAIL.finditer(text)) if "@" in text else []
    text = _blank(text, (m.span() for m in emails))
    hashtags = _HASHTAG.finditer(text) if "#" in text else ()
    mentions = _MENTION.finditer(text) if "@" in text else ()
    return {
        "urls": _unique(url for url, _ in urls),
        "emails": _unique(_normalize_email(m.group()) for m in emails),
        "hashtags": _unique("#" + m.group(1) for m in hashtags),
        "mentions": _unique("@" + m.group(1) for m in mentions),
        "dates": find_dates(text) if _DATE_GUARD.search(text) else [],
    }


def find_dates(text: str) -> list[dict[str, str]]:
    """``{"text", "date"}`` of each distinct valid date, in order of appearance."""
    dates = []
    seen: set[tuple[str, str]] = set()
    for match in _DATE.finditer(text):
        parsed = _to_date(match)
        if parsed is None:
            continue
        entry = (match.group(), parsed.isoformat())
        if entry not in seen:
            seen.add(entry)
            dates.append({"text": entry[0], "date": entry[1]})
    return dates

"""What a new password must not be (NIST SP 800-63B section 3.1.1.2, "memorized secrets").

The rules, and only these (no composition rules, no expiry):

- **Length**: at least :data:`MIN_LENGTH` and at most :data:`MAX_LENGTH` characters, counted in
  Unicode code points after NFKC normalisation (NIST: at least 64 must be allowed; spaces and any
  printable character count).
- **Not breached or common** (``PASSWORD_BREACHED``): the password is compared with a blocklist
  after :func:`fold`, which undoes the usual decorations (case, leading or trailing digits and
  symbols, leetspeak, separators), so ``Password1234!`` and ``p@ss word 2024`` both match
  ``password``. The list shipped with the service is ``common_passwords.json`` beside this module
  (its sources are named inside it and in ``services/identity/tools/build_password_blocklist.py``);
  an agency adds its own list with ``EGOV_IDENTITY_PASSWORD_BLOCKLIST_FILE``.
- **Not repetitive or sequential** (``PASSWORD_REPETITIVE``): fewer than five different
  characters, one chunk repeated (``passwordpassword``), or mostly runs such as ``1234``,
  ``abcd``, ``qwerty``, ``aaaa``.
- **Not context-specific** (``PASSWORD_CONTEXT``): the service's names, the person's login name
  (also reversed), name parts, six or more consecutive characters of their identifier, their
  birth date.

Every refusal is ``InvalidArgument`` with a field violation on ``new_password``; no message, log
line or metadata ever contains the password. The password is stored as :func:`normalise` makes it
(NFKC), so the same password typed with another Unicode composition still logs in.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egov_common.errors import FieldViolation, InvalidArgument

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "SERVICE_WORDS",
    "PasswordContext",
    "PasswordPolicy",
    "fold",
    "normalise",
    "read_blocklist_file",
]

MIN_LENGTH = 12
#: NIST asks verifiers to allow at least 64; far above that only costs hashing time.
MAX_LENGTH = 256
#: Words of this service that make a password guessable by anyone who knows where it is used.
SERVICE_WORDS: tuple[str, ...] = ("egov", "digitalid")
FIELD = "new_password"

#: Shortest folded blocklist entry compared as a core (shorter cores match too much).
_MIN_CORE = 4
#: Shortest run of repeated or consecutive characters that counts as a pattern.
_MIN_RUN = 3
#: Share of the password in such runs from which it is refused.
_RUN_SHARE = 0.75
_MIN_DISTINCT = 5
#: Consecutive identifier characters that count as "contains the identifier".
_IDENTIFIER_WINDOW = 6

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "|": "i", "+": "t"})
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")
#: Orders in which neighbours count as a sequence (digits wrap: ...8901...).
_SEQUENCES: tuple[str, ...] = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop",
                               "asdfghjkl", "zxcvbnm")


def normalise(password: str) -> str:
    """NFKC (NIST SP 800-63B section 5.1.1.2): what is checked and what is hashed."""
    return unicodedata.normalize("NFKC", password)


def _folded_case(text: str) -> str:
    return unicodedata.normalize("NFKC", normalise(text).casefold())


def fold(text: str) -> str:
    """The core a blocklist compares: NFKC, case folded, digits and symbols stripped from both
    ends, leetspeak undone, separators removed (``" P@ssw0rd-2024! "`` -> ``"password"``)."""
    core = _EDGES.sub("", _folded_case(text)).translate(_LEET)
    return _SEPARATORS.sub("", core)


def _alnum(text: str) -> str:
    return _SEPARATORS.sub("", _folded_case(text))


def blocklist_entries(lines: Iterable[str]) -> frozenset[str]:
    """The comparable forms of blocklist lines: the folded core when it is long enough to mean
    something, else the whole line case folded (``123456789012`` has no core) if it is long
    enough to be allowed at all."""
    out: set[str] = set()
    for line in lines:
        line = line.strip("\r\n")
        core = fold(line)
        if len(core) >= _MIN_CORE:
            out.add(core)
        elif len(whole := _folded_case(line)) >= MIN_LENGTH:
            out.add(whole)
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def shipped_blocklist() -> frozenset[str]:
    """The list shipped with the service (read once per process)."""
    text = importlib.resources.files(__package__).joinpath("common_passwords.json").read_text(
        encoding="utf-8")
    return frozenset(json.loads(text)["entries"])


def read_blocklist_file(path: Path) -> frozenset[str]:
    """An agency's own list: UTF-8, one password per line. Raises ``OSError`` or
    ``UnicodeDecodeError`` (the caller names the setting)."""
    with path.open(encoding="utf-8") as f:
        return blocklist_entries(f)


@dataclass(frozen=True, slots=True)
class PasswordContext:
    """What is known about the person whose password is being set (never logged)."""

    login_names: tuple[str, ...] = ()
    name_parts: tuple[str, ...] = ()
    #: Namespaced identifier (``TH-PID:...``, ``PASSPORT:GBR:...``).
    identifier: str = ""
    #: ISO date (``1975-03-14``).
    birth_date: str = ""


def _refuse(reason: str, message: str, violation: str, **metadata: str) -> InvalidArgument:
    return InvalidArgument(reason, message, field_violations=(FieldViolation(FIELD, violation),),
                           metadata=metadata)


def _relation(a: str, b: str) -> int | None:
    """0 for a repeat, +1 / -1 for neighbours in one of :data:`_SEQUENCES`, else None."""
    if a == b:
        return 0
    for sequence in _SEQUENCES:
        i, j = sequence.find(a), sequence.find(b)
        if i < 0 or j < 0:
            continue
        step = j - i
        if sequence[0] == "0":
            step = (step + 1) % 10 - 1  # 9 -> 0 continues 7, 8, 9
        if step in (1, -1):
            return step
    return None


def _pattern(text: str) -> str:
    """``"few characters"``, ``"repeated chunk"``, ``"runs"`` or ``""``."""
    if len(set(text)) < _MIN_DISTINCT:
        return "few characters"
    for unit in range(1, len(text) // 2 + 1):
        if (text[:unit] * (len(text) // unit + 1))[: len(text)] == text:
            return "repeated chunk"
    covered = [False] * len(text)
    start = 0
    relations = [_relation(a, b) for a, b in itertools.pairwise(text)]
    for i in range(1, len(relations) + 1):
        if i == len(relations) or relations[i] != relations[start] or relations[i] is None:
            if relations[start] is not None and i - start + 1 >= _MIN_RUN:
                covered[start : i + 1] = [True] * (i - start + 1)
            start = i
    return "runs" if sum(covered) >= _RUN_SHARE * len(text) else ""


def _birth_date_forms(birth_date: str) -> list[str]:
    """YYYYMMDD, DDMMYYYY and MMDDYYYY in the Gregorian and the Thai (B.E.) year."""
    year, _, rest = birth_date.partition("-")
    month, _, day = rest.partition("-")
    if not (year.isdigit() and month.isdigit() and day.isdigit()):
        return []
    forms = []
    for y in (year, str(int(year) + 543)):
        forms += [f"{y}{month}{day}", f"{day}{month}{y}", f"{month}{day}{y}"]
    return forms


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """The checks above, with the shipped blocklist plus ``extra_blocklist``."""

    extra_blocklist: frozenset[str] = field(default=frozenset(), repr=False)
    service_words: Sequence[str] = SERVICE_WORDS

    def _blocked(self, entry: str) -> bool:
        return entry in self.extra_blocklist or entry in shipped_blocklist()

    def check(self, password: str) -> str:
        """The checks that need nothing about the person (run before the caller is even
        authorised: they reveal nothing). Returns the normalised password to check further and
        to hash. Raises ``InvalidArgument`` (``PASSWORD_TOO_SHORT``, ``PASSWORD_TOO_LONG``,
        ``PASSWORD_REPETITIVE``, ``PASSWORD_BREACHED``, ``PASSWORD_CONTEXT``)."""
        normal = normalise(password)
        if len(normal) < MIN_LENGTH:
            raise _refuse("PASSWORD_TOO_SHORT", f"a password needs at least {MIN_LENGTH} "
                          "characters; a few unrelated words make a good one",
                          f"at least {MIN_LENGTH} characters", min_length=str(MIN_LENGTH))
        if len(normal) > MAX_LENGTH:
            raise _refuse("PASSWORD_TOO_LONG", f"a password has at most {MAX_LENGTH} characters",
                          f"at most {MAX_LENGTH} characters", max_length=str(MAX_LENGTH))
        pattern = _pattern(_folded_case(normal))
        if pattern:
            raise _refuse("PASSWORD_REPETITIVE", "the password is made of repeated or "
                          "consecutive characters (such as aaaa, abab, 1234 or qwerty)",
                          "not repetitive or sequential", pattern=pattern)
        if self._blocked(fold(normal)) or self._blocked(_folded_case(normal)):
            raise _refuse("PASSWORD_BREACHED", "the password, or the same with digits or symbols "
                          "added, is among commonly used or breached passwords",
                          "not a common or breached password")
        self._check_words(normal, self.service_words, "service_name",
                          "the password contains the name of this service")
        return normal

    def check_personal(self, password: str, context: PasswordContext) -> None:
        """The checks against what is known about the person: run only once the caller has
        shown the right to set this person's password, so that they cannot be used to guess
        a stranger's name or identifier. Raises ``InvalidArgument(PASSWORD_CONTEXT)``."""
        normal = normalise(password)
        logins = [part for name in context.login_names
                  for part in (name, name[::-1], *re.split(r"[\W_]+", name))]
        self._check_words(normal, logins, "login_name",
                          "the password contains your login name")
        parts = [part for name in context.name_parts for part in name.split()]
        self._check_words(normal, parts, "name", "the password contains your name")
        plain = _alnum(normal)
        number = _alnum(context.identifier.rpartition(":")[2])
        if number:
            windows = ([number] if len(number) <= _IDENTIFIER_WINDOW else
                       [number[i : i + _IDENTIFIER_WINDOW]
                        for i in range(len(number) - _IDENTIFIER_WINDOW + 1)])
            if any(w in plain for w in windows):
                raise _refuse("PASSWORD_CONTEXT", "the password contains part of your "
                              "identification number", "not your identification number",
                              context="identifier")
        if any(form in plain for form in _birth_date_forms(context.birth_date)):
            raise _refuse("PASSWORD_CONTEXT", "the password contains your birth date",
                          "not your birth date", context="birth_date")

    @staticmethod
    def _check_words(normal: str, words: Iterable[str], context: str, message: str) -> None:
        plain = _alnum(normal)
        unleet = _SEPARATORS.sub("", _folded_case(normal).translate(_LEET))
        for word in words:
            key = _alnum(word)
            if len(key) >= _MIN_CORE and (key in plain or key in unleet):
                raise _refuse("PASSWORD_CONTEXT", message, "no words that point to you or to "
                              "this service", context=context)

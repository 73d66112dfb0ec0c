"""Assurance levels: ordered values from configuration (Thai standard by default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from egov_common.errors import FieldViolation, InvalidArgument

#: Thai Digital ID standard (ETDA): IAL 1.1 < 1.2 < 1.3 < 2.1 < 2.2 < 2.3 < 3.
DEFAULT_IAL_LEVELS: tuple[str, ...] = ("1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "3")
#: Authenticator assurance levels a login here reaches (NIST SP 800-63B): AAL1 with a password,
#: AAL2 with a password and an authenticator code (TOTP) or with a CIBA approval on a registered
#: device. AAL3 needs a hardware-based authenticator resistant to verifier impersonation
#: (section 4.3), which no login path offers: discovery lists these, and a request that only
#: AAL3 would meet is refused before anyone is asked to log in.
AAL_LEVELS: tuple[int, ...] = (1, 2)


@dataclass(frozen=True, slots=True)
class AssuranceLevels:
    """An ordered list of level names; comparisons go by position, never by string."""

    names: tuple[str, ...] = DEFAULT_IAL_LEVELS

    @classmethod
    def parse(cls, text: str) -> AssuranceLevels:
        """From a comma-separated list, lowest first (``"1.1,1.2,...,3"``)."""
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        if not names or len(set(names)) != len(names):
            raise ValueError("IAL levels must be a non-empty list without duplicates")
        return cls(names)

    def rank(self, level: str, *, field: str = "target_ial") -> int:
        """Position of ``level``; raises ``InvalidArgument(IAL_UNKNOWN)`` for an unknown one."""
        try:
            return self.names.index(level)
        except ValueError:
            raise InvalidArgument(
                "IAL_UNKNOWN", "unknown identity assurance level",
                field_violations=(FieldViolation(field, f"one of {', '.join(self.names)}"),),
            ) from None

    def at_least(self, level: str, minimum: str) -> bool:
        return self.rank(level) >= self.rank(minimum)

    def highest(self, levels: Sequence[str]) -> str | None:
        known = [lv for lv in levels if lv in self.names]
        return max(known, key=self.names.index) if known else None

    def cap(self, level: str) -> str | None:
        """``level`` if configured, else the highest configured level below it (by default
        order), else ``None``; lets rules name Thai levels while a deployment trims the list."""
        if level in self.names:
            return level
        below = [n for n in DEFAULT_IAL_LEVELS[: DEFAULT_IAL_LEVELS.index(level) + 1]
                 if n in self.names] if level in DEFAULT_IAL_LEVELS else []
        return below[-1] if below else None

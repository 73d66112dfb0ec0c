"""A generated synthetic population standing in for DOPA, DBD and a bank's KYC service.

Deterministic from a seed: the same seed gives the same people (valid mod-11 national IDs, Thai
and English names, birth dates, ID card laser codes), companies with directors drawn from the
people, and a KYC provider ``bank-synthetic`` whose signing key derives from the seed (tests and
the demo sign KYC assertions with :meth:`SyntheticPopulation.kyc_signing_key`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from egov_pki.identifiers import check_digit
from jwt.algorithms import ECAlgorithm

from egov_identity.adapters.sources import RegisteredCompany, RegisteredPerson

_GIVEN = [
    ("สมชาย", "Somchai"), ("สมหญิง", "Somying"), ("วิชัย", "Wichai"), ("มาลี", "Malee"),
    ("ประเสริฐ", "Prasert"), ("สุดา", "Suda"), ("อนุชา", "Anucha"), ("พรทิพย์", "Pornthip"),
    ("ธนพล", "Thanaphon"), ("กมลวรรณ", "Kamonwan"), ("ณัฐพล", "Nattaphon"), ("ศิริพร", "Siriporn"),
]
_FAMILY = [
    ("ใจดี", "Jaidee"), ("รักไทย", "Rakthai"), ("ศรีสุข", "Srisuk"), ("มั่นคง", "Mankong"),
    ("วงศ์สวัสดิ์", "Wongsawat"), ("บุญมา", "Boonma"), ("แก้วใส", "Kaewsai"), ("ทองดี", "Thongdee"),
]
_COMPANY = [("เอแคม", "ACME"), ("สยามเทรด", "Siam Trade"), ("ไทยดิจิทัล", "Thai Digital")]

_AGENCY = [("กรมพัฒนาธุรกิจการค้า", "Department of Business Development"),
           ("กรมการปกครอง", "Department of Provincial Administration")]

KYC_PROVIDER = "bank-synthetic"


class SyntheticPopulation:
    """``size`` people and ``size // 10`` companies (at least one), generated from ``seed``."""

    name = "synthetic-dopa"

    def __init__(self, seed: int = 2569, size: int = 200) -> None:
        self._seed = seed
        self._size = max(size, 10)

    @cached_property
    def people(self) -> tuple[RegisteredPerson, ...]:
        rng = random.Random(self._seed)  # noqa: S311 - synthetic data, not secrets
        out: list[RegisteredPerson] = []
        seen: set[str] = set()
        while len(out) < self._size:
            first12 = str(rng.choice("12345678")) + "".join(
                str(rng.randrange(10)) for _ in range(11))
            number = first12 + str(check_digit(first12))
            if number in seen:
                continue
            seen.add(number)
            given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 55))
            laser = f"JT{rng.randrange(10)}-{rng.randrange(10**7):07d}-{rng.randrange(100):02d}"
            out.append(RegisteredPerson(
                identifier=f"TH-PID:{number}", given_name_th=given[0], family_name_th=family[0],
                given_name_en=given[1], family_name_en=family[1], birth_date=birth.isoformat(),
                card_laser_code=laser, document_expiry="2031-12-31",
            ))
        # Foreign residents with passports.
        for i in range(3):
            given, family = _GIVEN[i], _FAMILY[i]
            out.append(RegisteredPerson(
                identifier=f"PASSPORT:GBR:{rng.randrange(10**9):09d}", given_name_th="",
                family_name_th="", given_name_en=given[1], family_name_en=family[1],
                birth_date="1985-05-05", document_expiry="2030-01-01",
            ))
        return tuple(out)

    @cached_property
    def _people_by_id(self) -> dict[str, RegisteredPerson]:
        return {p.identifier: p for p in self.people}

    @cached_property
    def companies(self) -> tuple[RegisteredCompany, ...]:
        rng = random.Random(self._seed + 1)  # noqa: S311 - synthetic data
        thai = [p for p in self.people if p.identifier.startswith("TH-PID:")]
        out = []
        for i in range(max(1, self._size // 10)):
            first12 = "0105" + "".join(str(rng.randrange(10)) for _ in range(8))
            name_th, name_en = _COMPANY[i % len(_COMPANY)]
            suffix = f" {i}" if i >= len(_COMPANY) else ""
            directors = tuple(p.identifier for p in rng.sample(thai, 2))
            out.append(RegisteredCompany(
                identifier=f"TH-JUR:{first12}{check_digit(first12)}",
                name_th=f"บริษัท {name_th}{suffix} จำกัด", name_en=f"{name_en}{suffix} Co., Ltd.",
                directors=directors,
            ))
        return tuple(out)

    @cached_property
    def agencies(self) -> tuple[RegisteredCompany, ...]:
        """Government agencies (tax-id style numbers 0994...), each with its head as the one
        person who may grant representation. Kept apart from ``companies`` (stable order)."""
        rng = random.Random(self._seed + 2)  # noqa: S311 - synthetic data
        thai = [p for p in self.people if p.identifier.startswith("TH-PID:")]
        out = []
        for name_th, name_en in _AGENCY:
            first12 = "0994" + "".join(str(rng.randrange(10)) for _ in range(8))
            out.append(RegisteredCompany(
                identifier=f"TH-JUR:{first12}{check_digit(first12)}", name_th=name_th,
                name_en=name_en, directors=(rng.choice(thai).identifier,)))
        return tuple(out)

    # CivilRegistry
    def person(self, identifier: str) -> RegisteredPerson | None:
        return self._people_by_id.get(identifier)

    # CompanyRegister
    def company(self, identifier: str) -> RegisteredCompany | None:
        return next((c for c in (*self.companies, *self.agencies)
                     if c.identifier == identifier), None)

    # KycProviders
    def kyc_signing_key(self) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(hashlib.sha256(f"kyc:{self._seed}".encode()).digest(), "big")
        return ec.derive_private_key(scalar % (2**255), ec.SECP256R1())

    def jwks(self, provider: str) -> Mapping[str, Any] | None:
        if provider != KYC_PROVIDER:
            return None
        jwk = json.loads(ECAlgorithm.to_jwk(self.kyc_signing_key().public_key()))
        jwk.update(kid=f"{KYC_PROVIDER}-1", alg="ES256", use="sig")
        return {"keys": [jwk]}

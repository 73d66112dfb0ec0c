"""ETSI EN 319 412 certificate profile vocabulary shared by keys (issuing) and signing (reading).

Identifiers follow ETSI EN 319 412-1 section 5.1.3 (natural persons, ``serialNumber``) and 5.1.4
(legal persons, ``organizationIdentifier``): a three-letter type reference, a two-letter ISO 3166
country code, a hyphen and the identifier, e.g. ``PNOTH-1234567890121`` and
``NTRTH-0105536012345``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from egov_common.logging import mask_identifier

__all__ = [
    "ETSI_QCS_QCT_ESEAL",
    "ETSI_QCS_QCT_ESIGN",
    "POLICY_ETSI_NCP_PLUS",
    "POLICY_LEGAL_PERSON",
    "POLICY_NATURAL_PERSON",
    "POLICY_TSA",
    "SubjectIdentity",
    "parse_subject",
]

# Our private arc for certificate policies (a real deployment registers one under its CA's OID).
_ARC = "1.3.6.1.4.1.60417.1"
#: Policy of certificates for natural persons' signatures (with ETSI QCP-n beside it).
POLICY_NATURAL_PERSON = ObjectIdentifier(f"{_ARC}.1")
#: Policy of certificates for juristic persons' and agencies' electronic seals (with QCP-l).
POLICY_LEGAL_PERSON = ObjectIdentifier(f"{_ARC}.2")
#: Time-stamping policy of our TSA (RFC 3161 ``TSTInfo.policy``).
POLICY_TSA = ObjectIdentifier(f"{_ARC}.3")
#: ETSI EN 319 411-1 policy OIDs: NCP+ (0.4.0.2042.1.2); EN 319 411-2 QCP-n / QCP-l.
POLICY_ETSI_NCP_PLUS = ObjectIdentifier("0.4.0.2042.1.2")
POLICY_ETSI_QCP_N = ObjectIdentifier("0.4.0.194112.1.0")
POLICY_ETSI_QCP_L = ObjectIdentifier("0.4.0.194112.1.1")
#: ETSI EN 319 412-5 QcType values.
ETSI_QCS_QCT_ESIGN = ObjectIdentifier("0.4.0.1862.1.6.1")
ETSI_QCS_QCT_ESEAL = ObjectIdentifier("0.4.0.1862.1.6.2")

_NATURAL = re.compile(r"PNOTH-([0-9]{13})")
_LEGAL = re.compile(r"NTRTH-([0-9]{13})")


@dataclass(frozen=True, slots=True)
class SubjectIdentity:
    """Who a signing certificate names, read from its subject (EN 319 412-2/-3)."""

    common_name: str
    #: ``TH-PID`` or ``TH-JUR``, or empty when the certificate carries no Thai identifier.
    namespace: str
    #: The 13-digit number (unmasked: mask before logging or display).
    number: str
    organization: str
    given_name: str
    surname: str

    @property
    def masked_number(self) -> str:
        return mask_identifier(self.number) if self.number else ""


def _first(name: x509.Name, oid: ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def parse_subject(name: x509.Name) -> SubjectIdentity:
    """Read the ETSI identity fields of a certificate subject.

    A ``serialNumber`` of the form ``PNOTH-<13 digits>`` yields namespace ``TH-PID``, an
    ``organizationIdentifier`` ``NTRTH-<13 digits>`` yields ``TH-JUR``; other forms are kept out
    of ``number`` (the namespace is never guessed).
    """
    serial = _first(name, NameOID.SERIAL_NUMBER)
    org_id = _first(name, NameOID.ORGANIZATION_IDENTIFIER)
    namespace, number = "", ""
    if (m := _NATURAL.fullmatch(serial)) is not None:
        namespace, number = "TH-PID", m.group(1)
    elif (m := _LEGAL.fullmatch(org_id)) is not None:
        namespace, number = "TH-JUR", m.group(1)
    return SubjectIdentity(
        common_name=_first(name, NameOID.COMMON_NAME),
        namespace=namespace,
        number=number,
        organization=_first(name, NameOID.ORGANIZATION_NAME),
        given_name=_first(name, NameOID.GIVEN_NAME),
        surname=_first(name, NameOID.SURNAME),
    )

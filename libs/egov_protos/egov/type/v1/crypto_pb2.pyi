from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class HashAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HASH_ALGORITHM_UNSPECIFIED: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_SHA256: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_SHA384: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_SHA512: _ClassVar[HashAlgorithm]

class KeyAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_ALGORITHM_UNSPECIFIED: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ECDSA_P256: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ECDSA_P384: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_RSA_3072: _ClassVar[KeyAlgorithm]

class SignatureAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_ALGORITHM_UNSPECIFIED: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_ECDSA: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_RSA_PKCS1V15: _ClassVar[SignatureAlgorithm]
    SIGNATURE_ALGORITHM_RSA_PSS: _ClassVar[SignatureAlgorithm]

class PadesLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PADES_LEVEL_UNSPECIFIED: _ClassVar[PadesLevel]
    PADES_LEVEL_B_B: _ClassVar[PadesLevel]
    PADES_LEVEL_B_T: _ClassVar[PadesLevel]
    PADES_LEVEL_B_LT: _ClassVar[PadesLevel]
    PADES_LEVEL_B_LTA: _ClassVar[PadesLevel]
HASH_ALGORITHM_UNSPECIFIED: HashAlgorithm
HASH_ALGORITHM_SHA256: HashAlgorithm
HASH_ALGORITHM_SHA384: HashAlgorithm
HASH_ALGORITHM_SHA512: HashAlgorithm
KEY_ALGORITHM_UNSPECIFIED: KeyAlgorithm
KEY_ALGORITHM_ECDSA_P256: KeyAlgorithm
KEY_ALGORITHM_ECDSA_P384: KeyAlgorithm
KEY_ALGORITHM_RSA_3072: KeyAlgorithm
SIGNATURE_ALGORITHM_UNSPECIFIED: SignatureAlgorithm
SIGNATURE_ALGORITHM_ECDSA: SignatureAlgorithm
SIGNATURE_ALGORITHM_RSA_PKCS1V15: SignatureAlgorithm
SIGNATURE_ALGORITHM_RSA_PSS: SignatureAlgorithm
PADES_LEVEL_UNSPECIFIED: PadesLevel
PADES_LEVEL_B_B: PadesLevel
PADES_LEVEL_B_T: PadesLevel
PADES_LEVEL_B_LT: PadesLevel
PADES_LEVEL_B_LTA: PadesLevel

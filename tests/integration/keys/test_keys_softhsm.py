"""PKCS#11 custody with SoftHSM2: CA keys live in the token, owner keys are generated there and
kept wrapped under a token-resident KEK; two worker processes sign concurrently."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_der_private_key
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov_keys.domain.algorithms import HashAlgorithm, SignatureScheme, verify_digest_signature
from egov_testing.processes import start_service
from keys_grpc import authorize, create_person_credential, keys_env, sign_request, signing_metadata
from keys_world import sha256

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "5678"

pytestmark = [
    pytest.mark.softhsm,
    pytest.mark.skipif(
        shutil.which("softhsm2-util") is None or not Path(MODULE).exists(),
        reason="SoftHSM2 (softhsm2-util and libsofthsm2.so) is not installed",
    ),
]


@pytest.fixture
def softhsm_env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "egov-test",
            "--so-pin",
            "1234",
            "--pin",
            PIN,
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    return {
        "SOFTHSM2_CONF": str(conf),
        "EGOV_KEYS_KEY_BACKEND": "pkcs11",
        "EGOV_KEYS_PKCS11_MODULE": MODULE,
        "EGOV_KEYS_PKCS11_TOKEN_LABEL": "egov-test",
        "EGOV_KEYS_PKCS11_PIN": PIN,
        "EGOV_KEYS_SOFTWARE_KEK": "",
    }


def token_private_key_labels(env: dict[str, str]) -> list[str]:
    script = (
        "import pkcs11, sys\n"
        "from pkcs11 import ObjectClass, Attribute\n"
        f"t = pkcs11.lib({MODULE!r}).get_token(token_label='egov-test')\n"
        f"with t.open(user_pin={PIN!r}) as s:\n"
        "    for o in s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):\n"
        "        print(o.label, o[Attribute.EXTRACTABLE], o[Attribute.SENSITIVE])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    ).stdout
    return out.splitlines()


@pytest.fixture
def two_hsm_workers(
    softhsm_env: dict[str, str], jwks_url: str, tmp_path: Path
) -> Iterator[tuple[object, object, dict[str, str]]]:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    env = {
        **keys_env(jwks_url),
        **softhsm_env,
        "EGOV_KEYS_DATABASE_URL": db,
        "EGOV_KEYS_AUTO_BOOTSTRAP": "false",
        "EGOV_KEYS_PUBLIC_BASE_URL": "http://keys.test",
    }
    subprocess.run(
        [sys.executable, "-m", "egov_keys", "bootstrap"],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )
    with (
        start_service("egov_keys", env=env) as first,
        start_service("egov_keys", env=env) as second,
    ):
        yield first, second, {**env, "db": db}


def test_ca_keys_live_in_the_token_and_never_leave_it(two_hsm_workers):
    _, _, env = two_hsm_workers
    labels = token_private_key_labels(env)
    names = {line.split()[0].rsplit("-", 1)[0] for line in labels}
    assert {"root", "natural-person", "legal-person", "tsa", "ocsp-root"} <= names
    assert all(line.endswith("False True") for line in labels)  # not extractable, sensitive


def test_two_workers_sign_concurrently_with_wrapped_owner_keys(two_hsm_workers, identity):
    first, second, env = two_hsm_workers
    channels = [first.open_channel(), second.open_channel()]
    stubs = [keys_pb2_grpc.KeysServiceStub(c) for c in channels]
    metadata = signing_metadata(identity)
    credential = create_person_credential(stubs[0], identity, "hsm-1")
    assert credential.key_backend == keys_pb2.KEY_BACKEND_PKCS11
    public = x509.load_der_x509_certificate(credential.certificate_chain[0]).public_key()

    def sign_once(i: int) -> tuple[bytes, bytes]:
        stub = stubs[i % 2]
        digest = sha256(f"document {i}".encode())
        sad = authorize(stubs[(i + 1) % 2], identity, credential.credential_id, [digest])
        request = sign_request(credential.credential_id, sad, [digest])
        response = stub.SignHash(request, metadata=metadata, timeout=60)
        return digest, response.signatures[0]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(sign_once, range(40)))
    for digest, signature in results:
        verify_digest_signature(
            public, signature, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA
        )
    # The database holds only the wrapped blob: it is not a private key.
    engine = sa.create_engine(env["db"])
    with engine.connect() as conn:
        blob = conn.execute(sa.text("SELECT key_blob FROM credentials")).scalar_one()
    engine.dispose()
    with pytest.raises(ValueError):
        load_der_private_key(bytes(blob), password=None)
    # A SAD spent through one worker is refused by the other.
    digest = sha256(b"once")
    sad = authorize(stubs[0], identity, credential.credential_id, [digest])
    request = sign_request(credential.credential_id, sad, [digest])
    stubs[0].SignHash(request, metadata=metadata, timeout=60)
    with pytest.raises(grpc.RpcError) as info:
        stubs[1].SignHash(request, metadata=metadata, timeout=60)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    for c in channels:
        c.close()


_CUSTODY_SCRIPT = """
import sys
from cryptography.hazmat.primitives import hashes
from egov_keys.adapters.pkcs11_custody import Pkcs11Custody
from egov_keys.domain.algorithms import (
    HashAlgorithm, KeyAlgorithm, SignatureScheme, verify_digest_signature)
from egov_keys.domain.custody import KeyRole

custody = Pkcs11Custody(sys.argv[1], "egov-test", sys.argv[2], "kek")
custody.ensure_kek()
for algorithm in KeyAlgorithm:
    for role in KeyRole:
        key = custody.generate(f"{algorithm.value}-{role.value}", algorithm, role)
        assert bool(key.blob) == (role is KeyRole.OWNER)
        schemes = [algorithm.default_scheme] + (
            [SignatureScheme.RSA_PSS] if not algorithm.is_ec else [])
        for scheme in schemes:
            for hash_algorithm in HashAlgorithm:
                digest = hash_algorithm.digest(b"payload")
                signature = custody.sign_digest(key, digest, hash_algorithm, scheme)
                verify_digest_signature(key.public_key(), signature, digest, hash_algorithm,
                                        scheme)
print("ok")
"""


def test_pkcs11_custody_signs_with_every_algorithm_and_scheme(softhsm_env):
    result = subprocess.run(
        [sys.executable, "-c", _CUSTODY_SCRIPT, MODULE, PIN],
        capture_output=True,
        text=True,
        env={**os.environ, **softhsm_env},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def _worker_connections(service, port: int) -> dict[int, int]:
    """How many established connections to ``port`` each worker process of ``service`` holds
    (Linux: socket inodes of /proc/<pid>/fd matched against /proc/net/tcp)."""
    workers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == service.pid:
                workers.append(int(entry))
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    counts = {}
    for pid in workers:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        counts[pid] = len(inodes & established)
    return counts


def test_two_worker_processes_on_one_port_sign_and_spend_each_sad_once(
    softhsm_env, jwks_url, identity, tmp_path
):
    env = {
        **keys_env(jwks_url),
        **softhsm_env,
        "EGOV_KEYS_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "EGOV_KEYS_PUBLIC_BASE_URL": "http://keys.test",
        "EGOV_KEYS_PROCESSES": "2",
    }
    # Auto-bootstrap in the parent, which then checks every CA key in the token, closes its
    # session and forks: each worker logs in to the token on its own.
    with start_service("egov_keys", env=env) as service:
        # Each channel its own connection, so the kernel spreads them over both workers.
        channels = [
            grpc.insecure_channel(
                service.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(8)
        ]
        stubs = [keys_pb2_grpc.KeysServiceStub(c) for c in channels]
        metadata = signing_metadata(identity)
        credential = create_person_credential(stubs[0], identity, "workers-1")
        assert credential.key_backend == keys_pb2.KEY_BACKEND_PKCS11
        public = x509.load_der_x509_certificate(credential.certificate_chain[0]).public_key()

        def sign_once(i: int) -> tuple[bytes, bytes]:
            digest = sha256(f"document {i}".encode())
            sad = authorize(stubs[(i + 3) % 8], identity, credential.credential_id, [digest])
            request = sign_request(credential.credential_id, sad, [digest])
            response = stubs[i % 8].SignHash(request, metadata=metadata, timeout=60)
            return digest, response.signatures[0]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(sign_once, range(48)))
        for digest, signature in results:
            verify_digest_signature(
                public, signature, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA
            )
        port = int(service.grpc_address.rpartition(":")[2])
        per_worker = _worker_connections(service, port)
        assert len(per_worker) == 2
        if min(per_worker.values()) > 0:  # 8 connections all on one worker: 1 run in 128
            # A SAD spent through one worker is refused through every connection, the other
            # worker's included.
            digest = sha256(b"once")
            sad = authorize(stubs[0], identity, credential.credential_id, [digest])
            request = sign_request(credential.credential_id, sad, [digest])
            stubs[0].SignHash(request, metadata=metadata, timeout=60)
            for stub in stubs:
                with pytest.raises(grpc.RpcError) as info:
                    stub.SignHash(request, metadata=metadata, timeout=60)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        verdict = stubs[1].VerifyAuditLog(keys_pb2.VerifyAuditLogRequest(), metadata=metadata)
        assert verdict.intact, verdict.problem
        for c in channels:
            c.close()
        assert service.stop() == 0


_CACHE_SCRIPT = """
import os, sys
from pkcs11 import Attribute
from egov_keys.adapters.pkcs11_custody import Pkcs11Custody
from egov_keys.domain.algorithms import (
    HashAlgorithm, KeyAlgorithm, SignatureScheme, verify_digest_signature)
from egov_keys.domain.custody import KeyRole

clock = [1000.0]
custody = Pkcs11Custody(sys.argv[1], "egov-test", sys.argv[2], "kek",
                        monotonic=lambda: clock[0])
custody.ensure_kek()
key = custody.generate("owner-1", KeyAlgorithm.ECDSA_P256, KeyRole.OWNER)
digest = HashAlgorithm.SHA256.digest(b"payload")

def sign(c):
    signature = c.sign_digest(key, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA)
    verify_digest_signature(key.public_key(), signature, digest, HashAlgorithm.SHA256,
                            SignatureScheme.ECDSA)

sign(custody); sign(custody)
print("kept", custody.unwrapped_keys())
(_, handle), = custody._unwrapped.values()
print("sensitive", handle[Attribute.SENSITIVE], "extractable", handle[Attribute.EXTRACTABLE],
      "token", handle[Attribute.TOKEN])
clock[0] += 31
print("after 31 s", custody.unwrapped_keys())
custody.close()

# Closed: the library is finalized, so a forked process starts PKCS#11 afresh and signs.
pid = os.fork()
if pid == 0:
    child = Pkcs11Custody(sys.argv[1], "egov-test", sys.argv[2], "kek")
    sign(child)
    child.close()
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("forked worker", "signed" if status == 0 else f"failed {status}")

per_signature = Pkcs11Custody(sys.argv[1], "egov-test", sys.argv[2], "kek",
                              unwrapped_key_seconds=0)
sign(per_signature)
print("with 0 s", per_signature.unwrapped_keys())
"""


def test_unwrapped_owner_keys_stay_in_the_token_briefly(softhsm_env):
    result = subprocess.run(
        [sys.executable, "-c", _CACHE_SCRIPT, MODULE, PIN],
        capture_output=True,
        text=True,
        env={**os.environ, **softhsm_env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "kept 1",  # two signatures, one unwrap
        "sensitive True extractable False token False",  # a session object that cannot leave
        "after 31 s 0",  # destroyed when its time is up
        "forked worker signed",
        "with 0 s 0",
    ]


def _keys_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "egov_keys", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def _openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_a_revoked_software_ca_is_replaced_in_the_hsm_after_the_move_to_pkcs11(
    softhsm_env, jwks_url, identity, tmp_path
):
    """The hierarchy was bootstrapped with software keys; the service now runs with the token
    (and the software KEK for the older keys). A compromised natural-person CA is replaced in
    the token: its certificate is signed by the root's software key, and the new OCSP signer's
    answers by its token key, while the root's OCSP signer stays in software."""
    software = {
        **keys_env(jwks_url),
        "EGOV_KEYS_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "EGOV_KEYS_AUTO_BOOTSTRAP": "false",
        "EGOV_KEYS_AUTHORITY_RECHECK_SECONDS": "0",
    }
    assert _keys_command(software, "bootstrap").returncode == 0
    env = {**softhsm_env, **software, "EGOV_KEYS_KEY_BACKEND": "pkcs11"}
    with start_service("egov_keys", env=env) as service:
        revoked = _keys_command(
            env, "revoke-authority", "natural-person", "--reason", "ca_compromise"
        )
        assert revoked.returncode == 0, revoked.stderr[-3000:]
        replaced = _keys_command(env, "bootstrap")
        assert replaced.returncode == 0, replaced.stderr[-3000:]
        assert "natural-person, ocsp-natural-person" in replaced.stdout
        labels = {line.split()[0].rsplit("-", 1)[0] for line in token_private_key_labels(env)}
        assert {"natural-person", "ocsp-natural-person"} <= labels

        stub = keys_pb2_grpc.KeysServiceStub(service.open_channel())
        chain = create_person_credential(stub, identity, "after-the-move").certificate_chain
        pem = tmp_path / "pem"
        pem.mkdir()
        for name, der in zip(("leaf", "ca", "root"), chain, strict=True):
            cert = x509.load_der_x509_certificate(der)
            (pem / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        with urllib.request.urlopen(f"{service.http_url}/crl/natural-person.crl") as response:
            (pem / "ca.crl").write_bytes(response.read())
        assert "verify OK" in _openssl(
            "crl",
            "-inform",
            "DER",
            "-in",
            str(pem / "ca.crl"),
            "-CAfile",
            str(pem / "ca.pem"),
            "-noout",
        )
        _openssl(
            "verify",
            "-CAfile",
            str(pem / "root.pem"),
            "-untrusted",
            str(pem / "ca.pem"),
            str(pem / "leaf.pem"),
        )
        answer = _openssl(
            "ocsp",
            "-issuer",
            str(pem / "ca.pem"),
            "-cert",
            str(pem / "leaf.pem"),
            "-url",
            f"{service.http_url}/ocsp",
            "-CAfile",
            str(pem / "root.pem"),
            "-verify_other",
            str(pem / "ca.pem"),
        )
        assert "Response verify OK" in answer
        assert f"{pem / 'leaf.pem'}: good" in answer


_ATTACK_SCRIPT = """
import sys
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.constants import DEFAULT
from egov_keys.adapters.pkcs11_custody import Pkcs11Custody
from egov_keys.domain.algorithms import KeyAlgorithm
from egov_keys.domain.custody import KeyRole

module, pin = sys.argv[1], sys.argv[2]
custody = Pkcs11Custody(module, "egov-test", pin, "kek")
custody.ensure_kek()
keys = [custody.generate(f"owner-{a.value}", a, KeyRole.OWNER)
        for a in (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.RSA_3072)]
custody.close()

# Someone else with the PIN and the blobs from the database, in a session of their own.
with pkcs11.lib(module).get_token(token_label="egov-test").open(user_pin=pin, rw=True) as s:
    kek = s.get_key(label="kek", key_type=KeyType.AES)
    print("kek", *(kek[a] for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE,
                                     Attribute.MODIFIABLE, Attribute.COPYABLE)))
    base = {a: DEFAULT for a in (Attribute.ENCRYPT, Attribute.VERIFY, Attribute.WRAP,
                                 Attribute.DERIVE, Attribute.DECRYPT, Attribute.UNWRAP)}
    asks = {
        "readable": {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
        "extractable": {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True},
        "template left out": {},
    }
    for key in keys:
        key_type = KeyType.EC if key.algorithm.is_ec else KeyType.RSA
        for name, template in asks.items():
            try:
                kek.unwrap_key(ObjectClass.PRIVATE_KEY, key_type, key.blob,
                               mechanism=Mechanism.AES_KEY_WRAP_PAD, store=False,
                               capabilities=MechanismFlag.SIGN, template={**base, **template})
                print(key.algorithm.value, name, "unwrapped")
            except pkcs11.PKCS11Error as exc:
                print(key.algorithm.value, name, "refused")
"""


def test_the_kek_unwraps_owner_keys_only_as_sensitive_non_extractable_keys(softhsm_env):
    # Whoever holds the PIN and a wrapped blob used to be able to unwrap it as an extractable,
    # non-sensitive object and read the private key: the KEK had no CKA_UNWRAP_TEMPLATE.
    result = subprocess.run(
        [sys.executable, "-c", _ATTACK_SCRIPT, MODULE, PIN],
        capture_output=True,
        text=True,
        env={**os.environ, **softhsm_env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "kek True False False False",  # sensitive, not extractable, not modifiable nor copyable
        "ECDSA_P256 readable refused",
        "ECDSA_P256 extractable refused",
        "ECDSA_P256 template left out refused",
        "RSA_3072 readable refused",
        "RSA_3072 extractable refused",
        "RSA_3072 template left out refused",
    ]


_OLD_KEK_SCRIPT = """
import sys
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from egov_common.errors import FailedPrecondition
from egov_keys.adapters.pkcs11_custody import Pkcs11Custody
from egov_keys.domain.algorithms import (
    HashAlgorithm, KeyAlgorithm, SignatureScheme, verify_digest_signature)
from egov_keys.domain.custody import CustodyBackend, KeyReference, KeyRole

module, pin = sys.argv[1], sys.argv[2]
# A KEK and an owner key as the service made them before the unwrap template.
with pkcs11.lib(module).get_token(token_label="egov-test").open(user_pin=pin, rw=True) as s:
    old = s.generate_key(KeyType.AES, 256, label="old-kek", store=True,
                         capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                         template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
    params = s.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
    pub, priv = params.generate_keypair(
        store=False, private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: True,
                                       Attribute.SIGN: True})
    before = KeyReference("owner-before", CustodyBackend.PKCS11, KeyAlgorithm.ECDSA_P256,
                          KeyRole.OWNER, encode_ec_public_key(pub),
                          old.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_PAD))
pkcs11.lib(module).finalize()

stale = Pkcs11Custody(module, "egov-test", pin, "old-kek")
try:
    stale.check_kek()
    print("old KEK accepted")
except FailedPrecondition as exc:
    print("old KEK refused", exc.reason)
stale.close()

# The operator's way out: a new KEK, the old one kept to unwrap what it wrapped.
custody = Pkcs11Custody(module, "egov-test", pin, "new-kek", previous_kek_labels=["old-kek"])
custody.ensure_kek()
digest = HashAlgorithm.SHA256.digest(b"payload")
after = custody.generate("owner-after", KeyAlgorithm.ECDSA_P256, KeyRole.OWNER)
for key in (before, after):
    signature = custody.sign_digest(key, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA)
    verify_digest_signature(key.public_key(), signature, digest, HashAlgorithm.SHA256,
                            SignatureScheme.ECDSA)
    print(key.key_id, "signs")
custody.close()
only_new = Pkcs11Custody(module, "egov-test", pin, "new-kek", unwrapped_key_seconds=0)
try:
    only_new.sign_digest(before, digest, HashAlgorithm.SHA256, SignatureScheme.ECDSA)
    print("old blob opened without the old KEK")
except pkcs11.PKCS11Error:
    print("old blob needs the old KEK")
only_new.close()
"""


def test_a_kek_without_the_unwrap_template_is_refused_and_can_be_replaced(
    softhsm_env, jwks_url, tmp_path
):
    result = subprocess.run(
        [sys.executable, "-c", _OLD_KEK_SCRIPT, MODULE, PIN],
        capture_output=True,
        text=True,
        env={**os.environ, **softhsm_env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "old KEK refused KEK_UNWRAP_TEMPLATE_MISSING",
        "owner-before signs",
        "owner-after signs",
        "old blob needs the old KEK",
    ]
    # The service does not start on such a KEK: bootstrap (and start-up) exit 3 naming it.
    env = {
        **keys_env(jwks_url),
        **softhsm_env,
        "EGOV_KEYS_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "EGOV_KEYS_PKCS11_KEK_LABEL": "old-kek",
    }
    refused = _keys_command(env, "bootstrap")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "KEK_UNWRAP_TEMPLATE_MISSING" in refused.stderr

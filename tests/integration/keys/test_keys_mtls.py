"""Over mutual TLS, SignHash is for the signing service only (per-RPC authorisation by caller)."""

from __future__ import annotations

import grpc
from conftest import keys_env
from egov.keys.v1 import keys_pb2, keys_pb2_grpc
from egov.type.v1 import crypto_pb2, party_pb2
from egov_common.status import from_rpc_error
from egov_testing.processes import start_service
from keys_world import PERSON_ID, sha256


def test_only_the_signing_service_identity_may_call_sign_hash(jwks_url, identity, service_ca):
    env = {**keys_env(jwks_url), **service_ca.env("KEYS")}
    with start_service("egov_keys", env=env) as keys:

        def stub_as(name: str) -> tuple[grpc.Channel, keys_pb2_grpc.KeysServiceStub]:
            channel = grpc.secure_channel(keys.grpc_address, service_ca.credentials(name))
            return channel, keys_pb2_grpc.KeysServiceStub(channel)

        portal_channel, portal = stub_as("citizen-portal")
        signing_channel, signing = stub_as("signing")
        registry_channel, registry = stub_as("registry")
        credential = portal.CreateCredential(
            keys_pb2.CreateCredentialRequest(
                idempotency_key="mtls",
                owner=party_pb2.PartyIdentifier(
                    namespace=party_pb2.IDENTIFIER_NAMESPACE_TH_PID, value=PERSON_ID
                ),
                kind=keys_pb2.CREDENTIAL_KIND_NATURAL_PERSON,
                names=party_pb2.PartyNames(given_name_en="Somchai", family_name_en="Jaidee"),
                authorization_proof=identity.person(),
            ),
            timeout=60,
        ).credential
        digest = sha256(b"mtls")
        sad = portal.Authorize(
            keys_pb2.AuthorizeRequest(
                credential_id=credential.credential_id,
                hashes=[digest],
                hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
                num_signatures=1,
                authorization_proof=identity.person(),
            ),
            timeout=60,
        ).sad
        request = keys_pb2.SignHashRequest(
            credential_id=credential.credential_id,
            sad=sad,
            hashes=[digest],
            hash_algorithm=crypto_pb2.HASH_ALGORITHM_SHA256,
        )
        for other in (registry, portal):
            try:
                other.SignHash(request, timeout=60)
                raise AssertionError("SignHash accepted from a service other than signing")
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED
                assert from_rpc_error(err).reason == "CALLER_NOT_ALLOWED"
        assert len(signing.SignHash(request, timeout=60).signatures) == 1
        for channel in (portal_channel, signing_channel, registry_channel):
            channel.close()

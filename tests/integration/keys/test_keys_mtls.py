"""Over mutual TLS, SignHash is for the signing service only (per-RPC authorisation by caller)."""

from __future__ import annotations

import grpc
from egov.keys.v1 import keys_pb2_grpc
from egov_common.status import from_rpc_error
from egov_testing.processes import start_service
from keys_grpc import authorize, create_person_credential, keys_env, sign_request
from keys_world import sha256


def test_only_the_signing_service_identity_may_call_sign_hash(jwks_url, identity, service_ca):
    env = {**keys_env(jwks_url), **service_ca.env("KEYS")}
    with start_service("egov_keys", env=env) as keys:

        def stub_as(name: str) -> tuple[grpc.Channel, keys_pb2_grpc.KeysServiceStub]:
            channel = grpc.secure_channel(keys.grpc_address, service_ca.credentials(name))
            return channel, keys_pb2_grpc.KeysServiceStub(channel)

        portal_channel, portal = stub_as("citizen-portal")
        signing_channel, signing = stub_as("signing")
        registry_channel, registry = stub_as("registry")
        credential = create_person_credential(portal, identity, "mtls")
        digest = sha256(b"mtls")
        sad = authorize(portal, identity, credential.credential_id, [digest])
        request = sign_request(credential.credential_id, sad, [digest])
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

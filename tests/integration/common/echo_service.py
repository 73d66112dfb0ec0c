"""A tiny service built on egov_common, started as a real process by the tests beside it.

``python -m echo_service`` (with this folder on PYTHONPATH), variables ``EGOV_ECHO_*``.
Messages are protobuf well-known wrapper types, served through generic handlers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import grpc
from egov_common.auth import Caller, CallerKind, current_caller
from egov_common.channels import open_channel
from egov_common.deadlines import remaining
from egov_common.errors import FieldViolation, NotFound, Unauthenticated
from egov_common.server import GrpcService, serve
from egov_common.settings import ServiceSettings, load_settings_or_exit
from google.protobuf import empty_pb2, wrappers_pb2

SERVICE = "egov.test.v1.EchoService"


class EchoSettings(ServiceSettings):
    realm: str  # required: the settings test leaves it out
    echo_limit: int = 10


def _verify_token(token: str, *, peer_service: str | None) -> Caller:
    if token != "good-token":
        raise Unauthenticated("TOKEN_INVALID", "token not accepted")
    return Caller(CallerKind.PERSON, subject="person-1", peer_service=peer_service)


class Echo:
    def __init__(self, settings: EchoSettings) -> None:
        self.settings = settings

    def echo(self, request: wrappers_pb2.BytesValue, context: grpc.ServicerContext) -> object:
        return request

    def slow(self, request: wrappers_pb2.DoubleValue, context: grpc.ServicerContext) -> object:
        context.send_initial_metadata((("x-started", "1"),))
        finish = time.monotonic() + request.value
        while time.monotonic() < finish and context.is_active():
            time.sleep(0.02)
        return empty_pb2.Empty()

    def fail(self, request: wrappers_pb2.StringValue, context: grpc.ServicerContext) -> object:
        raise NotFound(
            "THING_NOT_FOUND",
            "no such thing",
            field_violations=(FieldViolation("value", "unknown thing"),),
            metadata={"thing": request.value},
        )

    def crash(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        raise RuntimeError("db password hunter2 for 1234567890121")

    def upload(
        self, requests: Iterator[wrappers_pb2.BytesValue], context: grpc.ServicerContext
    ) -> object:
        return wrappers_pb2.Int64Value(value=sum(len(r.value) for r in requests))

    def download(
        self, request: wrappers_pb2.Int64Value, context: grpc.ServicerContext
    ) -> Iterator[wrappers_pb2.BytesValue]:
        for _ in range(request.value):
            yield wrappers_pb2.BytesValue(value=b"x" * 1024)

    def who_am_i(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        caller = current_caller()
        return wrappers_pb2.StringValue(value=f"{caller.kind.value}:{caller.subject}")

    def pid(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        """Which process answered (the workers of EGOV_ECHO_PROCESSES > 1)."""
        return wrappers_pb2.Int64Value(value=os.getpid())

    def peer(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        """The caller's end of the connection the call came on (``ipv4:127.0.0.1:port``)."""
        return wrappers_pb2.StringValue(value=context.peer())

    def remaining(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        left = remaining()
        return wrappers_pb2.DoubleValue(value=-1.0 if left is None else left)

    def relay(self, request: wrappers_pb2.DoubleValue, context: grpc.ServicerContext) -> object:
        """Calls this same service's Slow without a timeout: the incoming deadline applies."""
        with open_channel(self.settings.grpc_listen, self.settings) as channel:
            slow = channel.unary_unary(
                f"/{SERVICE}/Slow",
                request_serializer=wrappers_pb2.DoubleValue.SerializeToString,
                response_deserializer=empty_pb2.Empty.FromString,
            )
            return slow(request)


def _handlers(echo: Echo) -> grpc.GenericRpcHandler:
    bv, sv, dv, iv, em = (
        wrappers_pb2.BytesValue,
        wrappers_pb2.StringValue,
        wrappers_pb2.DoubleValue,
        wrappers_pb2.Int64Value,
        empty_pb2.Empty,
    )

    def unary(fn: object, req: type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=req.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": unary(echo.echo, bv),
            "Slow": unary(echo.slow, dv),
            "Fail": unary(echo.fail, sv),
            "Crash": unary(echo.crash, em),
            "WhoAmI": unary(echo.who_am_i, em),
            "Remaining": unary(echo.remaining, em),
            "Pid": unary(echo.pid, em),
            "Peer": unary(echo.peer, em),
            "Relay": unary(echo.relay, dv),
            "Upload": grpc.stream_unary_rpc_method_handler(
                echo.upload,
                request_deserializer=bv.FromString,
                response_serializer=iv.SerializeToString,
            ),
            "Download": grpc.unary_stream_rpc_method_handler(
                echo.download,
                request_deserializer=iv.FromString,
                response_serializer=bv.SerializeToString,
            ),
        },
    )


def _http_app() -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": "echo"})

    return Starlette(routes=[Route("/hello", hello)])


def main() -> None:
    settings = load_settings_or_exit(EchoSettings, "ECHO")
    echo = Echo(settings)
    serve(
        settings,
        [GrpcService(SERVICE, lambda server: server.add_generic_rpc_handlers((_handlers(echo),)))],
        http_app=_http_app() if settings.http_listen else None,
        token_verifier=_verify_token,
    )


if __name__ == "__main__":
    main()

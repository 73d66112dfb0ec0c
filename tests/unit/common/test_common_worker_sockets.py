"""The listening sockets that workers share: HTTP answers are not held back by Nagle."""

from __future__ import annotations

import asyncio
import socket

from egov_common.server import _bound_socket


def test_connections_accepted_on_a_shared_socket_have_nodelay() -> None:
    async def main() -> int:
        sock = _bound_socket("127.0.0.1", 0, reuse_port=True)
        sock.listen()
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(main()) != 0

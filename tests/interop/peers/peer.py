"""A permessage-deflate peer for anyws's interop tests: Python `websockets`, as a server or a
client, started by tests/interop (see its README) and nothing else.

    peer.py server [OPTIONS]      listens on 127.0.0.1, port chosen by the system, and prints
                                  `listening on ws://127.0.0.1:PORT`
    peer.py client URL [OPTIONS]  connects once to URL

OPTIONS (permessage-deflate settings; none: websockets' defaults, compression="deflate"):
    --window N             server_max_window_bits=N and client_max_window_bits=N
    --no-context-takeover  server_no_context_takeover and client_no_context_takeover

On each connection it first sends a text message, JSON: {"peer", "offer", "answer"}, the
Sec-WebSocket-Extensions of the request and of the response as it sent or received them. Then it
echoes every message with its type, until a text message `!close CODE REASON` asks it to close
with that code and reason. When a connection has closed it prints one line, JSON: {"closed":
{"code", "reason"}} of the close frame it received (null if none).
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

MAX_SIZE = 8 << 20


def settings(args):
    window, no_takeover = None, False
    i = 0
    while i < len(args):
        if args[i] == "--window":
            window = int(args[i + 1])
            i += 2
        elif args[i] == "--no-context-takeover":
            no_takeover = True
            i += 1
        else:
            sys.exit(f"peer.py: unknown option {args[i]!r}")
    return window, no_takeover


def extensions(window, no_takeover, server):
    """The `extensions` argument, or None for websockets' defaults."""
    if window is None and not no_takeover:
        return None
    factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
    kwargs = dict(
        server_no_context_takeover=no_takeover,
        client_no_context_takeover=no_takeover,
    )
    if window is not None:
        kwargs.update(server_max_window_bits=window, client_max_window_bits=window)
    return [factory(**kwargs)]


async def talk(ws):
    await ws.send(
        json.dumps(
            {
                "peer": "python websockets",
                "offer": ws.request.headers.get("Sec-WebSocket-Extensions"),
                "answer": ws.response.headers.get("Sec-WebSocket-Extensions"),
            }
        )
    )
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("!close "):
                _, code, reason = message.split(" ", 2)
                await ws.close(int(code), reason)
                break
            await ws.send(message)
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    rcvd = ws.protocol.close_rcvd
    closed = None if rcvd is None else {"code": rcvd.code, "reason": rcvd.reason}
    print(json.dumps({"closed": closed}), flush=True)


async def server(args):
    window, no_takeover = settings(args)
    ext = extensions(window, no_takeover, server=True)
    kwargs = {"compression": None, "extensions": ext} if ext else {}
    async with serve(talk, "127.0.0.1", 0, max_size=MAX_SIZE, **kwargs) as srv:
        port = srv.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await srv.serve_forever()


async def client(url, args):
    window, no_takeover = settings(args)
    ext = extensions(window, no_takeover, server=False)
    kwargs = {"compression": None, "extensions": ext} if ext else {}
    async with connect(url, max_size=MAX_SIZE, **kwargs) as ws:
        await talk(ws)


def main():
    args = sys.argv[1:]
    if args[:1] == ["server"]:
        asyncio.run(server(args[1:]))
    elif args[:1] == ["client"] and len(args) >= 2:
        asyncio.run(client(args[1], args[2:]))
    else:
        sys.exit("usage: peer.py server [OPTIONS] | peer.py client URL [OPTIONS]")


if __name__ == "__main__":
    main()

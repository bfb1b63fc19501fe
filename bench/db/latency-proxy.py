#!/usr/bin/env python3
"""A TCP proxy on loopback that adds a fixed delay to every round trip to PostgreSQL.

Each chunk the client sends is held for DELAY before it is forwarded, without holding up
the chunks behind it (each keeps its own arrival time), so a statement's round trip
takes DELAY longer, as it would to a database in another availability zone, and a
pipelined burst is delayed once, not once per chunk. Answers come back at once.

Usage: latency-proxy.py LISTEN_PORT TARGET_HOST:PORT DELAY_MS
Prints "ready" when it listens.
"""
import asyncio
import sys
import time


async def pump_delayed(reader, writer, delay):
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write())


async def pump(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            writer.close()
            return
        writer.write(data)
        await writer.drain()


async def main():
    port, target, delay_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    host, target_port = target.rsplit(":", 1)
    delay = delay_ms / 1000.0

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(target_port))
            await asyncio.gather(
                pump_delayed(client_reader, server_writer, delay),
                pump(server_reader, client_writer),
            )
        except (ConnectionError, OSError):
            pass
        finally:
            client_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

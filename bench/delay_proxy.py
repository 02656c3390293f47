#!/usr/bin/python3
"""delay_proxy.py: a TCP proxy that adds a round-trip time, for benchmarks of
the remote cache over a slower network (this kernel has no netem qdisc).

  delay_proxy.py LISTEN_PORT TARGET_PORT RTT_MS

Every chunk is forwarded RTT/2 after it arrived, in each direction, in
order; so a request and its answer take one RTT more than on loopback, and
a connection's setup (forwarded when the proxy accepts it) one more.
"""
import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await task
    except (ConnectionError, asyncio.CancelledError):
        task.cancel()
        writer.close()


async def main():
    listen, target, rtt = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
    delay = rtt / 2

    async def handle(cr, cw):
        await asyncio.sleep(rtt)  # the connection's setup
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())

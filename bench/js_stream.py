#!/usr/bin/env python3
"""Creates or deletes a JetStream stream for bench/messaging.sh (weir never creates streams).

usage: js_stream.py create NAME SUBJECT | delete NAME | count NAME
Needs nats-py (pip install nats-py) and the server on 127.0.0.1:4222.
"""
import asyncio
import sys

import nats
from nats.js.api import StreamConfig


async def main(op, name, subject=None):
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    if op == "create":
        try:
            await js.delete_stream(name)
        except Exception:
            pass
        await js.add_stream(StreamConfig(name=name, subjects=[subject]))
    elif op == "delete":
        await js.delete_stream(name)
    elif op == "count":
        print((await js.stream_info(name)).state.messages)
    await nc.close()


asyncio.run(main(*sys.argv[1:]))

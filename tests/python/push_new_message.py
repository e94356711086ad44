"""Pushes a `new_message` Hatchet event through the official Python SDK, as a gateway built for the Python
worker does for a follow-up message.

usage: push_new_message.py <payload json> <additional_metadata json> [--on-stdin]
With --on-stdin it prints `READY` once the SDK is loaded and pushes when a line arrives on stdin (so a test can
time the push without waiting for the interpreter to start); a JSON object on that line is merged into the payload
(e.g. a timestamp taken at push time). Prints `PUSHED` once the engine accepted the event.
"""

import json
import sys

from hatchet_sdk import Hatchet

payload = json.loads(sys.argv[1])
metadata = json.loads(sys.argv[2])
hatchet = Hatchet()
if "--on-stdin" in sys.argv[3:]:
    print("READY", flush=True)
    line = sys.stdin.readline().strip()
    if line.startswith("{"):
        payload.update(json.loads(line))
hatchet.event.push("new_message", payload, additional_metadata=metadata or None)
print("PUSHED", flush=True)

"""Starts a Python SDK worker for the interop tests.

usage: interop_worker.py <name> <slots> <workflow,...>   (names from interop_app.WORKFLOWS)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    name, slots, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    os.environ["ACF_WORKER_NAME"] = name
    # Imported after ACF_WORKER_NAME is set: tasks read it at import time. The SDK starts its
    # action listener with the `spawn` method, hence the __main__ guard below.
    from interop_app import WORKFLOWS, hatchet

    hatchet.worker(
        name,
        slots=slots,
        durable_slots=10 if "durable" in names else None,
        workflows=[WORKFLOWS[w] for w in names],
    ).start()


if __name__ == "__main__":
    main()

"""Prints Hatchet's compiled gRPC descriptors, as shipped inside the official Python SDK, as JSON.

Output (one JSON object on stdout):
  hatchet_sdk_version  -- installed hatchet-sdk version
  files                -- names of the .proto files found under hatchet_sdk.contracts
  descriptor_set       -- base64 of a google.protobuf.FileDescriptorSet holding one
                          FileDescriptorProto per file

Every *_pb2 module under hatchet_sdk.contracts is included (not a fixed list), so a file added by
a newer SDK shows up in the conformance test instead of being silently ignored.
"""

import base64
import importlib
import importlib.metadata
import json
import pathlib
import sys

from google.protobuf import descriptor_pb2

import hatchet_sdk.contracts as contracts


def contract_modules():
    """Yields every generated message module (file name ends in _pb2.py) below hatchet_sdk.contracts.

    The tree is walked on disk because the SDK's v1/ directories are namespace packages, which
    pkgutil.walk_packages does not descend into.
    """
    for root in contracts.__path__:
        base = pathlib.Path(root)
        for path in sorted(base.rglob("*_pb2.py")):
            relative = path.relative_to(base).with_suffix("")
            yield importlib.import_module(contracts.__name__ + "." + ".".join(relative.parts))


def main():
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    seen = set()
    for module in sorted(contract_modules(), key=lambda m: m.DESCRIPTOR.name):
        file_descriptor = module.DESCRIPTOR
        if file_descriptor.name in seen:
            continue
        seen.add(file_descriptor.name)
        file_proto = descriptor_set.file.add()
        file_descriptor.CopyToProto(file_proto)
    if not seen:
        sys.exit("dump_descriptors: no *_pb2 modules found under hatchet_sdk.contracts")
    json.dump(
        {
            "hatchet_sdk_version": importlib.metadata.version("hatchet-sdk"),
            "files": sorted(seen),
            "descriptor_set": base64.b64encode(descriptor_set.SerializeToString()).decode("ascii"),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()

"""Regenerate generated/ from proto/ (run through `make gen`).

Writes, for every proto under proto/agentplane: messages (_pb2.py), gRPC
stubs (_pb2_grpc.py), typed stubs for both (.pyi, mypy-protobuf), and
`descriptors.binpb`, a FileDescriptorSet with source info, from which the
gateway takes the proto comments for its OpenAPI document.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "generated"
BIN = Path(sys.executable).parent


def main(protos: list[str]) -> int:
    shutil.rmtree(OUT / "agentplane", ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    rel = [str(Path(p).resolve().relative_to(ROOT / "proto")) for p in protos]
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--mypy_out={OUT}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"--mypy_grpc_out={OUT}",
        "--include_source_info",
        f"--descriptor_set_out={OUT / 'agentplane' / 'v1' / 'descriptors.binpb'}",
        *rel,
    ]
    (OUT / "agentplane" / "v1").mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        return 1
    for pkg in (OUT / "agentplane", OUT / "agentplane" / "v1"):
        (pkg / "__init__.py").write_text("")
    (OUT / "agentplane" / "py.typed").write_text("")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

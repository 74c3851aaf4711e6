"""One mapping from errors to google.rpc.Status (ARCHITECTURE principle 5).

`RpcError` carries a Status through either transport: the in-process one
raises it directly, the channel one rebuilds it from the gRPC trailers. The
gateway renders each family's error body from it and nothing else.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.base.errors import DomainError

DOMAIN = "agentplane.dev"


class RpcError(Exception):
    """A call ended with a non-OK status."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status

    @property
    def code(self) -> int:
        return self.status.code

    def details(self) -> list[object]:
        """The unpacked google.rpc detail messages."""
        out: list[object] = []
        for any_msg in self.status.details:
            for cls in (
                error_details_pb2.ErrorInfo,
                error_details_pb2.BadRequest,
                error_details_pb2.RetryInfo,
            ):
                if any_msg.Is(cls.DESCRIPTOR):
                    msg = cls()
                    any_msg.Unpack(msg)
                    out.append(msg)
        return out

    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        return next((d for d in self.details() if isinstance(d, error_details_pb2.ErrorInfo)), None)

    def field_violations(self) -> list[error_details_pb2.BadRequest.FieldViolation]:
        return [
            v
            for d in self.details()
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ]


def _pack(msg: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)  # type: ignore[arg-type]
    return packed


def from_domain(err: DomainError) -> RpcError:
    status = status_pb2.Status(code=getattr(code_pb2, err.code), message=err.message)
    if err.reason:
        status.details.append(
            _pack(error_details_pb2.ErrorInfo(reason=str(err.reason), domain=DOMAIN, metadata=err.metadata))
        )
    if err.violations:
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in err.violations
                    ]
                )
            )
        )
    retry_after = err.metadata.get("retry_after_seconds")
    if retry_after:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = int(float(retry_after))
        status.details.append(_pack(info))
    return RpcError(status)


def simple(code: grpc.StatusCode, message: str) -> RpcError:
    return RpcError(status_pb2.Status(code=code.value[0], message=message))

"""The JSON codec of the gateway and the servicers: proto messages to and from
JSON-ready Python values (`encode`, `decode`), and free-form JSON kept as
parsed for requests served in this process (`free_form`). The reference its
tests compare against is google.protobuf.json_format."""

from service.codec.decode import ParseError, from_dict, merge_dict
from service.codec.encode import encoder, timestamp_json, to_dict
from service.codec.free_form import (
    NOT_KEPT,
    free_form,
    keeping_free_form,
    list_to_python,
    struct_to_python,
    value_to_python,
)

__all__ = [
    "NOT_KEPT",
    "ParseError",
    "encoder",
    "free_form",
    "from_dict",
    "keeping_free_form",
    "list_to_python",
    "merge_dict",
    "struct_to_python",
    "timestamp_json",
    "to_dict",
    "value_to_python",
]

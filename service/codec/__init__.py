"""The JSON codec of the gateway and the servicers: proto messages to and from
JSON-ready Python values (`encode`, `decode`), and free-form JSON kept as
parsed for requests served in this process (`free_form`). The reference its
tests compare against is google.protobuf.json_format."""

from service.codec.decode import ParseError, from_dict, merge_dict, type_violations
from service.codec.encode import encoder, field_key, timestamp_json, to_dict
from service.codec.free_form import (
    NOT_KEPT,
    fill_free_form,
    free_form,
    keep_free_form_value,
    keeping_free_form,
    list_to_python,
    struct_to_python,
    value_to_python,
)

__all__ = [
    "NOT_KEPT",
    "ParseError",
    "encoder",
    "field_key",
    "fill_free_form",
    "free_form",
    "from_dict",
    "keep_free_form_value",
    "keeping_free_form",
    "list_to_python",
    "merge_dict",
    "struct_to_python",
    "timestamp_json",
    "to_dict",
    "type_violations",
    "value_to_python",
]

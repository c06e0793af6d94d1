"""OTLP trace messages encoded straight into protobuf wire format (opentelemetry/proto/trace/v1/trace.proto).

Why by hand: the collector runs beside the engine under one GIL, so every microsecond it spends per batch is
taken from the engine. Building the five spans of a batch through protobuf's Python message API costs ~200 us
(measured here: attribute messages are created and copied one by one); encoding bytes directly, with every
constant part (keys, stage names, modes, the model's attributes) encoded once and cached, costs a tenth of that.
Only the handful of fields Prism writes are encoded; the receiver decodes them with the real protobuf classes
(tests do exactly that).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping
from typing import Any

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_CACHE_LIMIT = 4096  # encoded constants kept; beyond this (unbounded label values) they are encoded each time


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def varint(value: int) -> bytes:
    """Base-128 varint; negative int64 values take ten bytes (two's complement), as protobuf writes them."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, sub-messages)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


_strings: dict[str, bytes] = {}


def any_value(value: Any) -> bytes:
    """An encoded AnyValue (common.proto): string 1, bool 2, int 3, double 4, array 5."""
    if isinstance(value, str):
        cached = _strings.get(value)
        if cached is None:
            cached = field_bytes(1, value.encode())
            if len(_strings) < _CACHE_LIMIT:
                _strings[value] = cached
        return cached
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"!" + _pack_double(value)  # tag 4, wire type 1 (64-bit)
    if isinstance(value, list | tuple):
        return field_bytes(5, b"".join(field_bytes(1, any_value(v)) for v in value))
    return any_value(str(value))


_keys: dict[str, bytes] = {}


def attribute(key: str, value: Any) -> bytes:
    """One KeyValue as a Span.attributes entry (span field 9). Ints and floats take a short path: they vary."""
    prefix = _keys.get(key)
    if prefix is None:
        prefix = _keys[key] = field_bytes(1, key.encode()) + b"\x12"  # key, then the tag of the value field
    if type(value) is int:  # not bool, which is an int: it goes through any_value
        encoded = b"\x18" + varint(value)
    elif type(value) is float:
        encoded = b"!" + _pack_double(value)  # AnyValue.double_value: field 4, 64-bit
    else:
        encoded = any_value(value)
    body = prefix + _ONE_BYTE[len(encoded)] + encoded  # an encoded scalar is at most 11 bytes
    return b"J" + varint(len(body)) + body  # field 9, length-delimited


_constant_attrs: dict[tuple[tuple[str, Any], ...], bytes] = {}


def constant_attributes(pairs: tuple[tuple[str, Any], ...]) -> bytes:
    """The encoded attributes of (key, value) pairs that repeat (stage and mode, model and device): cached."""
    cached = _constant_attrs.get(pairs)
    if cached is None:
        cached = b"".join(attribute(k, v) for k, v in pairs)
        if len(_constant_attrs) < _CACHE_LIMIT:
            _constant_attrs[pairs] = cached
    return cached


_names: dict[str, bytes] = {}


def span(
    name: str,
    start_ns: int,
    end_ns: int,
    attributes: bytes,
    *,
    trace: bytes,
    span_id: bytes,
    parent: bytes = b"",
    kind: int = 1,
) -> bytes:
    """One Span, ready to go into a ScopeSpans (as its field 2). kind 1 = INTERNAL."""
    encoded_name = _names.get(name)
    if encoded_name is None:
        encoded_name = field_bytes(5, name.encode())
        if len(_names) < _CACHE_LIMIT:
            _names[name] = encoded_name
    body = b"".join(
        (
            b"\n\x10",  # 1: trace_id, 16 bytes
            trace,
            b"\x12\x08",  # 2: span_id, 8 bytes
            span_id,
            b'"\x08' + parent if parent else b"",  # 4: parent_span_id
            encoded_name,
            b"0" + varint(kind),  # 6: kind
            b"9",  # 7: start_time_unix_nano, fixed64
            _pack_fixed64(start_ns),
            b"A",  # 8: end_time_unix_nano, fixed64
            _pack_fixed64(end_ns),
            attributes,
        )
    )
    return b"\x12" + varint(len(body)) + body


def scope_spans(scope_name: str, scope_version: str, spans: list[bytes]) -> bytes:
    """A ScopeSpans message: the instrumentation scope and the encoded spans."""
    scope = field_bytes(1, scope_name.encode()) + field_bytes(2, scope_version.encode())
    return field_bytes(1, scope) + b"".join(spans)


def export_trace_request(resource_attributes: Mapping[str, Any], scope: bytes) -> bytes:
    """An ExportTraceServiceRequest with one ResourceSpans holding one ScopeSpans."""
    resource = b"".join(
        field_bytes(1, field_bytes(1, k.encode()) + field_bytes(2, any_value(v)))
        for k, v in resource_attributes.items()
    )
    resource_spans = field_bytes(1, resource) + field_bytes(2, scope)
    return field_bytes(1, resource_spans)


def new_trace_id() -> bytes:
    return random.getrandbits(128).to_bytes(16, "big")


def new_span_id() -> bytes:
    return random.getrandbits(64).to_bytes(8, "big")

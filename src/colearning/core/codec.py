"""The one codec: weights <-> safetensors bytes, and the SHA-256 id of those bytes.

Safetensors holds only a JSON header and raw little-endian arrays, so decoding bytes
from another party can never run code (unlike pickle). The order of the arrays and
whether they were given as a list travel in the header's metadata.

Incoming weights are checked against what the receiver expects with
:func:`check_weights`: the same names in the same order, the same dtypes and shapes
(a 1-D ``uint8`` array is an encoded model, such as a boosted-tree booster, whose length
may change), and no NaN or Inf.

:func:`decode` reads the safetensors layout itself (a JSON header, then the arrays'
bytes back to back), with safetensors' own checks, and gives arrays that are read-only
views of the bytes: decoding a received model needs no second copy of it (safetensors'
``load`` copies every array, and takes only ``bytes``, so a receive buffer would have
been copied twice).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from colearning.core.exceptions import WeightsError
from colearning.core.interface import Array, Layout, Weights

# One metadata key only: safetensors writes metadata from a hash map, so with two keys
# their order (and so the bytes and the id) would change from call to call.
_META_KEY = "colearning"


def encode(weights: Weights) -> bytes:
    """Serialize ``weights`` to safetensors bytes (the training summary is not included).

    The bytes are safetensors' own, to the byte: arrays of the common dtypes under
    printable ASCII names are laid out here exactly as ``safetensors.numpy.save`` lays
    them out (:func:`_layout`), which takes a tenth of its time on small models and one
    copy fewer on large ones; anything else is written by safetensors itself.
    ``tests/core/test_codec.py`` checks that both give the same bytes.

    Examples
    --------
    >>> import numpy as np
    >>> w = Weights(weights={"a": np.arange(3.0)})
    >>> decode(encode(w)) == w
    True
    """
    laid_out = _layout(weights)
    if laid_out is None:
        return encode_with_safetensors(weights)
    header, data = laid_out
    return b"".join([header, *data])


def encode_with_safetensors(weights: Weights) -> bytes:
    """``weights`` written by ``safetensors.numpy.save`` itself (what :func:`encode`
    gives, by a slower road; kept for what :func:`_layout` does not cover)."""
    from safetensors.numpy import save

    arrays = {name: np.ascontiguousarray(a) for name, a in weights.arrays.items()}
    try:
        return save(arrays, metadata={_META_KEY: _layout_json(weights)})
    except Exception as exc:
        raise WeightsError(f"cannot encode weights with safetensors: {exc}") from exc


def id_of(weights: Weights) -> str:
    """The id of ``weights``: the SHA-256 of :func:`encode`'s bytes, hashed as they are
    laid out, without building them (a proposal's id costs no copy of the model)."""
    laid_out = _layout(weights)
    if laid_out is None:
        return weights_id(encode_with_safetensors(weights))
    header, data = laid_out
    digest = hashlib.sha256(header)
    for chunk in data:
        digest.update(chunk)
    return digest.hexdigest()


#: safetensors writes its arrays sorted by dtype (the order of its ``Dtype`` enum,
#: highest first), then by name; these are the dtypes :func:`_layout` writes itself.
_SAFETENSORS_ORDER: tuple[str, ...] = ("U64", "I64", "F64", "C64", "F32", "U32", "I32", "F16")
_SAFETENSORS_ORDER += ("U16", "I16", "I8", "U8", "BOOL")
_CODES: dict[np.dtype[Any], tuple[int, str]] = {
    np.dtype(numpy_dtype): (_SAFETENSORS_ORDER.index(code), code)
    for code, numpy_dtype in {
        "U64": "<u8",
        "I64": "<i8",
        "F64": "<f8",
        "C64": "<c8",
        "F32": "<f4",
        "U32": "<u4",
        "I32": "<i4",
        "F16": "<f2",
        "U16": "<u2",
        "I16": "<i2",
        "I8": "i1",
        "U8": "u1",
        "BOOL": "?",
    }.items()
}


def _plain_name(name: str) -> bool:
    """A name JSON writes as it is in every writer: printable ASCII, no quote or
    backslash (and not safetensors' reserved key)."""
    return (
        name.isascii()
        and name.isprintable()
        and '"' not in name
        and "\\" not in name
        and name != "__metadata__"
    )


def _layout(weights: Weights) -> tuple[bytes, list[memoryview]] | None:
    """The safetensors header (its 8-byte length, the JSON, the padding) and the
    arrays' bytes in the order safetensors writes them; ``None`` for what is left to
    safetensors (a dtype or byte order outside :data:`_CODES`, an unusual name).

    The header depends only on the layout and each array's name, dtype and shape, so
    it is built once for each such form and reused (a round of 1,000 proposals of one
    model builds it once, not 1,000 times)."""
    arrays = weights.arrays
    key = (weights.layout, tuple((name, a.dtype, a.shape) for name, a in arrays.items()))
    known_form = _HEADERS.get(key)
    if known_form is not None:
        header, order = known_form
        return header, [
            np.ascontiguousarray(arrays[n]).reshape(-1).view(np.uint8).data for n in order
        ]
    laid_out = _build_layout(weights)
    if laid_out is not None:
        if len(_HEADERS) >= _HEADERS_KEPT:
            _HEADERS.clear()
        _HEADERS[key] = (laid_out[0], laid_out[2])
        return laid_out[0], laid_out[1]
    return None


#: Headers by form (:func:`_layout`); a handful of models a process at most, so the
#: cache is simply emptied when it fills.
_HEADERS: dict[tuple[Any, ...], tuple[bytes, tuple[str, ...]]] = {}
_HEADERS_KEPT = 64


def _build_layout(weights: Weights) -> tuple[bytes, list[memoryview], tuple[str, ...]] | None:
    """:func:`_layout` for a form not seen yet, and the order of the arrays' bytes."""
    entries = []
    for name, array in weights.arrays.items():
        known = _CODES.get(array.dtype)
        if known is None or not _plain_name(name):
            return None
        entries.append((known[0], name, known[1], np.ascontiguousarray(array)))
    entries.sort(key=lambda e: (e[0], e[1]))
    parts = ['{"__metadata__":{"' + _META_KEY + '":']
    parts.append(json.dumps(_layout_json(weights), ensure_ascii=False) + "}")
    data: list[memoryview] = []
    offset = 0
    for _, name, code, array in entries:
        end = offset + array.nbytes
        shape = ",".join(str(d) for d in array.shape)
        parts.append(
            f',"{name}":{{"dtype":"{code}","shape":[{shape}],"data_offsets":[{offset},{end}]}}'
        )
        data.append(array.reshape(-1).view(np.uint8).data)
        offset = end
    parts.append("}")
    text = "".join(parts).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text, data, tuple(e[1] for e in entries)


def _layout_json(weights: Weights) -> str:
    """The header's layout: array order, 0-d arrays, and the payload's form.

    A dict or list of NumPy arrays writes exactly the three keys the first version
    wrote (so its bytes, and its id, stay the same); other forms add ``container`` and
    ``elements``.
    """
    layout = weights.layout
    # safetensors' numpy binding stores a 0-d array as shape (1,): remember which.
    scalars = [name for name, a in weights.arrays.items() if a.ndim == 0]
    data: dict[str, Any] = {
        "order": list(layout.names),
        "is_list": weights.is_list,
        "scalars": scalars,
    }
    if layout.container not in ("dict", "list"):
        data["container"] = layout.container
    if any(kind != "numpy" for kind in layout.elements):
        data["elements"] = list(layout.elements)
    return json.dumps(data)


def weights_id(blob: bytes) -> str:
    """The id of encoded weights: the hex SHA-256 of their bytes."""
    return hashlib.sha256(blob).hexdigest()


_ID = re.compile(r"[0-9a-f]{64}")


def is_weights_id(value: object) -> bool:
    """Whether ``value`` has the form of a weights id: 64 lowercase hex digits."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def check_weights_id(value: object, where: str) -> str:
    """``value`` if it is a weights id (64 lowercase hex digits), else :class:`WeightsError`.

    Every id that comes from outside (a stored record, a file name, the wire) passes
    here before it is used, so an id can never name a path such as ``../../etc/passwd``.

    Examples
    --------
    >>> check_weights_id("ab" * 32, "the id")[:8]
    'abababab'
    >>> check_weights_id("../../etc/passwd", "the id")
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: the id must be a weights id (64 lowercase \
hex digits, the SHA-256 of the weights' bytes); got '../../etc/passwd'
    """
    if not is_weights_id(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise WeightsError(
            f"{where} must be a weights id (64 lowercase hex digits, the SHA-256 of the "
            f"weights' bytes); got {shown}"
        )
    return str(value)


#: The largest JSON header a blob may declare (safetensors' own limit).
MAX_HEADER_BYTES = 100_000_000
#: The most arrays one blob may hold (ResNet-152 has about a thousand).
MAX_ARRAYS = 100_000
#: The most dimensions one array may have (NumPy 1.x's limit; NumPy 2 allows 64).
MAX_DIMS = 32
#: The largest array, in bytes, NumPy can describe: no shape may claim more, even an
#: empty one (``(0, 2**63)`` would pass the byte-range check and then break NumPy).
MAX_ARRAY_BYTES = 2**63 - 1


#: How deeply JSON from another party may nest arrays and objects. Python's parser
#: recurses per level and its recursion limit does not bound the C stack (a thread's is
#: smaller, and a library may raise the limit), so depth is measured first, without
#: recursion.
MAX_JSON_DEPTH = 200
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(text: bytes | str) -> int:
    """How deeply ``text`` nests JSON arrays and objects (brackets inside strings do
    not count), measured in one pass without recursion.

    >>> json_depth(b'{"a": [1, {"b": "]]"}]}')
    3
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    codes = np.frombuffer(_JSON_STRING.sub(b"", data), np.uint8)
    steps = ((codes == 0x5B) | (codes == 0x7B)).astype(np.int64)
    steps -= (codes == 0x5D) | (codes == 0x7D)
    return int(np.cumsum(steps).max(initial=0))


def json_deeper_than(text: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests JSON more than ``limit`` levels deep. Text with at most
    ``limit`` opening brackets in all cannot (counted in C, so the common header costs
    microseconds); only other text is measured by :func:`json_depth`.

    >>> json_deeper_than(b'[[[]]]', 2), json_deeper_than(b'[[[]]]', 3)
    (True, False)
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    return json_depth(data) > limit


def check_json_depth(text: bytes | str, what: str) -> None:
    """Refuse (:class:`WeightsError`) JSON nested deeper than :data:`MAX_JSON_DEPTH`."""
    if not json_deeper_than(text):
        return
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise WeightsError(
            f"{what} nests JSON {depth} levels deep; at most {MAX_JSON_DEPTH} are read"
        )


#: safetensors dtype names and the NumPy dtypes they hold (little-endian).
DTYPES: Mapping[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
    "C64": "<c8",
}
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {name: np.dtype(code) for name, code in DTYPES.items()}

#: What :func:`decode` reads: any buffer.
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class HeaderEntry:
    """One array as a blob's header declares it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class BlobHeader:
    """A safetensors header, checked: every array's dtype, shape and byte range, the
    ranges contiguous from the start of the data, and the size of the whole blob."""

    header_bytes: int
    entries: tuple[HeaderEntry, ...]
    metadata: Mapping[str, str]

    @property
    def data_start(self) -> int:
        return 8 + self.header_bytes

    @property
    def total_size(self) -> int:
        """The exact size in bytes of a blob with this header."""
        return self.data_start + max((e.end for e in self.entries), default=0)


class _NotSafetensors(WeightsError):
    """Why some bytes are not a safetensors blob (a fragment: the callers say more)."""


def header_length(prefix: Buffer) -> int:
    """The header length a blob's first 8 bytes declare, bounded by
    :data:`MAX_HEADER_BYTES` (so nothing larger is ever read for it)."""
    try:
        return _header_length(memoryview(prefix).cast("B"))
    except _NotSafetensors as exc:
        raise _blob_error(exc) from None


def read_header(head: Buffer) -> BlobHeader:
    """Parse and check the header at the start of ``head`` (the 8-byte length and the
    JSON after it; the array data may follow or not).

    This is the one reader of the format: :func:`decode` and :func:`sealed_arrays` use
    it too, so what one accepts the others accept.

    Raises
    ------
    WeightsError
        If the header is truncated, over :data:`MAX_HEADER_BYTES`, not a JSON object,
        names an array twice, declares an unknown dtype, a shape whose size does not
        match its byte range (or that NumPy cannot hold: over :data:`MAX_DIMS`
        dimensions or :data:`MAX_ARRAY_BYTES`), more than :data:`MAX_ARRAYS` arrays, or
        ranges that overlap or leave gaps.
    """
    try:
        return _parse_header(memoryview(head).cast("B"))
    except _NotSafetensors as exc:
        raise _blob_error(exc) from None


def _blob_error(exc: _NotSafetensors) -> WeightsError:
    return WeightsError(
        f"the blob's safetensors header is malformed ({exc}); it is damaged or not a weights blob"
    )


def _header_length(view: memoryview) -> int:
    if len(view) < 8:
        raise _NotSafetensors(
            f"{len(view)} bytes are too short: a blob starts with an 8-byte header length"
        )
    n = int.from_bytes(view[:8], "little")
    if n > MAX_HEADER_BYTES:
        raise _NotSafetensors(
            f"it declares a {n}-byte header, more than the {MAX_HEADER_BYTES} a "
            "safetensors header may have"
        )
    return n


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        names = [k for k, _ in pairs]
        raise _NotSafetensors(
            f"the header names {sorted({n for n in names if names.count(n) > 1})[:5]} twice"
        )
    return out


def _parse_header(view: memoryview) -> BlobHeader:
    """The checks safetensors' ``deserialize`` makes on a header, and NumPy's limits
    (a shape it can hold), in one place; raises :class:`_NotSafetensors`."""
    n = _header_length(view)
    if 8 + n > len(view):
        raise _NotSafetensors(
            f"it declares a {n}-byte header but holds only {len(view) - 8} bytes after the "
            "length (truncated)"
        )
    raw = bytes(view[8 : 8 + n])
    known = _PARSED.get(raw)
    if known is not None:  # the same header bytes read before: the same checked header
        return known
    parsed = _parse_header_json(raw, n)
    if n <= _CACHED_HEADER_BYTES:
        if len(_PARSED) >= _PARSED_KEPT:
            _PARSED.clear()
        _PARSED[raw] = parsed
    return parsed


#: Checked headers by their bytes: every round's weights of one model carry the same
#: header, so a coordinator, a learner server or a sealing reads it once, not once a
#: round. A handful of models a process; the cache is emptied when it fills, and only
#: headers of at most :data:`_CACHED_HEADER_BYTES` are kept (a party sending large
#: headers, each different, must not fill memory: at most 64 x 256 KiB are held).
_PARSED: dict[bytes, BlobHeader] = {}
_PARSED_KEPT = 64
_CACHED_HEADER_BYTES = 256 * 1024


def _parse_header_json(raw: bytes, n: int) -> BlobHeader:
    """:func:`_parse_header` for header bytes not read before."""
    if not raw.startswith(b"{"):
        raise _NotSafetensors("the header is not a JSON object")
    if json_deeper_than(raw):
        raise _NotSafetensors("the header's JSON is nested too deeply")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _NotSafetensors(f"the header is not JSON: {exc}") from None
    except RecursionError:
        raise _NotSafetensors("the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise _NotSafetensors("the header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _NotSafetensors("__metadata__ must map names to strings")
    if len(header) > MAX_ARRAYS:
        raise _NotSafetensors(f"it holds {len(header)} arrays; at most {MAX_ARRAYS} are read")
    entries = [_entry(name, info) for name, info in header.items()]
    position = 0
    for e in sorted(entries, key=lambda e: (e.start, e.end)):
        if e.start != position:
            raise _NotSafetensors(
                f"{e.name!r} starts at byte {e.start}, not {position}: ranges overlap or leave gaps"
            )
        position = e.end
    return BlobHeader(n, tuple(entries), MappingProxyType(metadata))


def _entry(name: str, info: Any) -> HeaderEntry:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise _NotSafetensors(f"{name!r} must hold exactly dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise _NotSafetensors(f"{name!r} has dtype {_shown(dtype)}; known: {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _NotSafetensors(
            f"{name!r} has shape {_shown(shape)}; a shape is a list of integers >= 0"
        )
    if len(shape) > MAX_DIMS:
        raise _NotSafetensors(f"{name!r} has {len(shape)} dimensions; at most {MAX_DIMS}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _NotSafetensors(f"{name!r} has data_offsets {_shown(offsets)}; expected [start, end]")
    itemsize = _NUMPY_DTYPES[dtype].itemsize
    claimed = math.prod(d for d in shape if d) * itemsize
    if claimed > MAX_ARRAY_BYTES:
        raise _NotSafetensors(
            f"{name!r} of shape {_shown(shape)} claims more than {MAX_ARRAY_BYTES} bytes"
        )
    size = math.prod(shape) * itemsize
    if offsets[1] - offsets[0] != size:
        raise _NotSafetensors(
            f"{name!r} of dtype {dtype} and shape {_shown(shape)} needs {size} bytes but its "
            f"data_offsets span {offsets[1] - offsets[0]}"
        )
    return HeaderEntry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _read_blob(blob: Buffer) -> tuple[BlobHeader, dict[str, Array]]:
    """The checked header and the arrays (read-only views of ``blob``, in header
    order); the header's ranges must cover the data exactly. Nothing is allocated for
    an array before its header has been checked against the bytes that hold it."""
    view = memoryview(blob).cast("B").toreadonly()
    header = _parse_header(view)
    if len(view) != header.total_size:
        raise _NotSafetensors(
            f"the entries cover {header.total_size - header.data_start} bytes of the "
            f"{len(view) - header.data_start} after the header (truncated, or trailing bytes)"
        )
    data = view[header.data_start :]
    arrays: dict[str, Array] = {}
    for e in header.entries:
        dtype = _NUMPY_DTYPES[e.dtype]
        count = math.prod(e.shape)
        if count:
            array = np.frombuffer(data, dtype=dtype, count=count, offset=e.start)
        else:  # frombuffer refuses an offset at the very end of the buffer
            array = np.zeros(0, dtype)
        array = array.reshape(e.shape)
        if not array.flags.aligned:  # a sender's odd layout: copy, so every consumer can use it
            array = array.copy()
        array.flags.writeable = False
        arrays[e.name] = array
    return header, arrays


def sealed_arrays(blob: bytes) -> dict[str, Array]:
    """The arrays of ``blob`` as read-only views of its bytes, in layout order.

    ``blob`` must be ``bytes``, which nobody can change: the views can never be made
    writable (NumPy refuses, the buffer being read-only), so what they hold is what
    the blob's id says, for as long as anyone holds them. Nothing is copied (except an
    array a sender laid out unaligned, which is copied once, read-only).
    """
    if not isinstance(blob, bytes):
        raise WeightsError(
            f"sealed arrays need immutable bytes; got {type(blob).__name__} (pass bytes(blob))"
        )
    try:
        header, arrays = _read_blob(blob)
    except _NotSafetensors as exc:
        raise _blob_error(exc) from None
    return _laid_out(header, arrays)[0]


def _laid_out(
    header: BlobHeader, arrays: dict[str, Array]
) -> tuple[dict[str, Array], dict[str, Any]]:
    """The arrays in the layout's order (0-d arrays restored), and the layout."""
    layout = _read_layout(header.metadata, sorted(arrays))
    scalars = set(layout["scalars"])
    ordered = {
        name: arrays[name].reshape(())
        if name in scalars and arrays[name].size == 1
        else arrays[name]
        for name in layout["order"]
    }
    return ordered, layout


def decode(blob: Buffer, expected: Weights | WeightsSpec | None = None) -> Weights:
    """Parse safetensors bytes into :class:`Weights`, optionally checking them.

    The weights come back in the form they were encoded from (a list stays a list,
    PyTorch tensors are rebuilt as tensors where PyTorch is installed). ``blob`` may
    be any buffer (``bytes``, a ``bytearray``, a ``memoryview``); the arrays are
    read-only views of it, so it is not copied.

    Raises
    ------
    WeightsError
        If the bytes are not a safetensors blob, their layout header is malformed, or
        they do not match ``expected``.
    """
    try:
        header, arrays = _read_blob(blob)
    except _NotSafetensors as exc:
        raise WeightsError(
            f"these {memoryview(blob).nbytes} bytes are not safetensors-encoded weights "
            f"({exc}); send weights encoded with colearning.core.codec.encode"
        ) from None
    ordered, layout = _laid_out(header, arrays)
    weights = Weights.from_arrays(
        ordered, Layout(layout["container"], tuple(layout["order"]), tuple(layout["elements"]))
    )
    if expected is not None:
        check_weights(weights, expected)
    return weights


_CONTAINERS = ("dict", "OrderedDict", "list", "tuple", "value")
_ELEMENTS = ("numpy", "torch", "python")


def _read_layout(metadata: Mapping[str, str], stored: list[str]) -> dict[str, Any]:
    """The header's layout, checked key by key (absent in plain safetensors files).
    Read once for each layout text and set of array names (like :data:`_PARSED`); the
    answer is shared, so callers only read it."""
    raw = metadata.get(_META_KEY)
    key = (raw if isinstance(raw, str) else None, tuple(stored))
    known = _LAYOUTS.get(key) if key[0] is not None else None
    if known is not None:
        return known
    layout = _check_layout(raw, stored)
    if key[0] is not None and len(key[0]) <= _CACHED_HEADER_BYTES:
        if len(_LAYOUTS) >= _PARSED_KEPT:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


_LAYOUTS: dict[tuple[str | None, tuple[str, ...]], dict[str, Any]] = {}


def _check_layout(raw: object, stored: list[str]) -> dict[str, Any]:
    """:func:`_read_layout` for a layout not read before."""

    def bad(what: str) -> WeightsError:
        return WeightsError(
            f"weights header holds a malformed layout ({what}); send weights encoded "
            "with colearning.core.codec.encode"
        )

    if isinstance(raw, str) and json_deeper_than(raw):
        raise bad("its JSON is nested too deeply")
    try:
        layout = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON: {exc}") from None
    except RecursionError:
        raise bad("its JSON is nested too deeply") from None
    if not isinstance(layout, dict):
        raise bad(f"a {type(layout).__name__}, not an object")
    order = layout.get("order", sorted(stored))
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
        raise bad("'order' must be a list of names")
    if sorted(order) != stored:
        raise WeightsError(f"weights header lists arrays {order} but the blob holds {stored}")
    scalars = layout.get("scalars") or []
    if not isinstance(scalars, list) or not all(isinstance(n, str) for n in scalars):
        raise bad("'scalars' must be a list of names")
    is_list = layout.get("is_list", False)
    if not isinstance(is_list, bool):
        raise bad("'is_list' must be true or false")
    container = layout.get("container", "list" if is_list else "dict")
    if container not in _CONTAINERS:
        raise bad(f"'container' must be one of {list(_CONTAINERS)}")
    if container == "value" and len(order) != 1:
        raise bad("a single value must hold exactly one array")
    elements = layout.get("elements", ["numpy"] * len(order))
    if (
        not isinstance(elements, list)
        or len(elements) != len(order)
        or not all(e in _ELEMENTS for e in elements)
    ):
        raise bad(f"'elements' must list one of {list(_ELEMENTS)} per array")
    return {"order": order, "scalars": scalars, "container": container, "elements": elements}


@dataclass(frozen=True)
class WeightsSpec:
    """Names, dtypes and shapes a receiver expects, in order."""

    entries: tuple[tuple[str, str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, weights: Weights) -> WeightsSpec:
        return cls(tuple((n, a.dtype.str, a.shape) for n, a in weights.arrays.items()))

    def as_dict(self) -> Mapping[str, tuple[str, tuple[int, ...]]]:
        return self._by_name

    @functools.cached_property
    def _by_name(self) -> Mapping[str, tuple[str, tuple[int, ...]]]:
        # built once: every proposal of a round is checked against the same spec (a
        # plain dict, so a learner holding a spec still pickles, as Ray sends learners)
        return {n: (d, s) for n, d, s in self.entries}


def _is_encoded_model(dtype: str, shape: tuple[int, ...]) -> bool:
    return np.dtype(dtype) == np.uint8 and len(shape) == 1


def check_weights(weights: Weights, expected: Weights | WeightsSpec) -> None:
    """Raise :class:`WeightsError` unless ``weights`` fit ``expected`` and are finite.

    Examples
    --------
    >>> import numpy as np
    >>> ref = Weights(weights={"w": np.zeros(3)})
    >>> check_weights(Weights(weights={"w": np.ones(3)}), ref)
    >>> check_weights(Weights(weights={"w": np.ones(4)}), ref)
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: weight 'w' has shape (4,); expected (3,) ...
    """
    spec = expected if isinstance(expected, WeightsSpec) else WeightsSpec.of(expected)
    want = spec.as_dict()
    got_names = list(weights.arrays)
    want_names = [n for n, _, _ in spec.entries]
    if got_names != want_names:
        missing = [n for n in want_names if n not in weights.arrays]
        extra = [n for n in got_names if n not in want]
        raise WeightsError(
            f"weight names do not match: missing {missing}, unexpected {extra}"
            + ("" if missing or extra else f", order {got_names} instead of {want_names}")
            + "; the proposal must come from the same model architecture"
        )
    for name, array in weights.arrays.items():
        dtype, shape = want[name]
        if array.dtype.str != dtype:
            raise WeightsError(
                f"weight {name!r} has dtype {array.dtype}; expected {np.dtype(dtype)} "
                "(cast it before proposing, or use the same model on every learner)"
            )
        if array.shape != shape and not _is_encoded_model(dtype, shape):
            raise WeightsError(
                f"weight {name!r} has shape {array.shape}; expected {shape} "
                "(the proposal must come from the same model architecture)"
            )
        _check_finite(name, array)


def _check_finite(name: str, array: Array) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise WeightsError(
            f"weight {name!r} holds {bad} NaN/Inf value(s); a diverged model cannot be "
            "proposed (lower the learning rate or clip gradients)"
        )


def check_finite(weights: Weights) -> None:
    """Raise :class:`WeightsError` if any float array holds NaN or Inf."""
    for name, array in weights.arrays.items():
        _check_finite(name, array)

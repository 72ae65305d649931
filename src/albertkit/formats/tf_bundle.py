"""TensorFlow's checkpoint format (a "tensor bundle"), read with the standard library and numpy.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus ``PREFIX.data-0000S-of-0000N``:

* the ``.index`` is a LevelDB-format table (sorted string table): data blocks of prefix-compressed
  key/value entries, an index block pointing at them, and a 48-byte footer; each block is followed
  by a compression byte (0 none, 1 snappy) and the masked crc32c of block + that byte;
* key ``""`` holds a ``BundleHeaderProto`` (number of shards, endianness); every other key is a
  tensor name whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, crc32c);
* the data files hold each tensor's raw little-endian bytes at that offset; the entry's crc32c
  (masked, like the blocks') covers exactly those bytes.

The two protos are decoded from the protobuf wire format directly, so TensorFlow is not needed.

    >>> bundle = TensorBundle("model.ckpt-best")  # doctest: +SKIP
    >>> bundle.shapes()["bert/embeddings/word_embeddings"]  # doctest: +SKIP
    (30000, 128)
    >>> bundle.read("bert/embeddings/word_embeddings").dtype  # doctest: +SKIP
    dtype('float32')
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BundleError", "BundleEntry", "TensorBundle", "crc32c"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_MASK_DELTA = 0xA282EAD8
# tensorflow/core/framework/types.proto -> numpy (bfloat16 is widened to float32 exactly)
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 14: "bfloat16", 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class BundleError(ValueError):
    """A checkpoint file that cannot be read; the message names the file and what is wrong."""


# -- crc32c (Castagnoli), as LevelDB and TensorFlow checksum their files ------------------------------
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def _crc32c_python(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C of ``data``: through ``google-crc32c`` when installed (pip install albertkit[google]),
    else in pure Python (a few MB/s: albert-base's 47 MB of weights take tens of seconds)."""
    try:
        import google_crc32c
    except ImportError:
        return _crc32c_python(bytes(data))
    return int(google_crc32c.value(bytes(data)))


def _unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# -- protobuf wire format (only what the two bundle protos use) ---------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varint/fixed fields, bytes for the rest."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + n]), pos + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives (a decoded ``BundleEntryProto``)."""

    name: str
    dtype: int  # TensorFlow DataType enum
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int  # masked, as stored
    sliced: bool  # a partitioned variable (stored in slices): not supported


def _entry(name: str, value: bytes) -> BundleEntry:
    dtype = shard = offset = size = crc = 0
    shape: list[int] = []
    sliced = False
    for number, v in _fields(value):
        if number == 1:
            dtype = v
        elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }
            for dn, dim in _fields(v):
                if dn == 2:
                    shape.append(next((s for sn, s in _fields(dim) if sn == 1), 0))
        elif number == 3:
            shard = v
        elif number == 4:
            offset = v
        elif number == 5:
            size = v
        elif number == 6:
            crc = v
        elif number == 7:
            sliced = True
    return BundleEntry(name, int(dtype), tuple(int(s) for s in shape), int(shard), int(offset), int(size), int(crc), sliced)


# -- snappy (the table's optional block compression) ------------------------------------------------------
def _snappy_decompress(data: bytes) -> bytes:
    n, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            length, offset = (tag >> 2) + 1, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError("bad snappy copy offset")
        start = len(out) - offset
        for i in range(length):  # may overlap its own output
            out.append(out[start + i])
    if len(out) != n:
        raise ValueError(f"snappy block decompressed to {len(out)} bytes, expected {n}")
    return bytes(out)


# -- the bundle ----------------------------------------------------------------------------------------------
class TensorBundle:
    """A TensorFlow V2 checkpoint (``PREFIX.index`` + data shards), read without TensorFlow.

    Args:
        prefix: the checkpoint prefix (``model.ckpt-best``), or its ``.index`` file.
        verify: check the crc32c of every index block and of every tensor read.
    """

    def __init__(self, prefix: str | os.PathLike, verify: bool = True) -> None:
        prefix = str(prefix)
        if prefix.endswith(".index"):
            prefix = prefix[: -len(".index")]
        self.prefix = prefix
        self.verify = verify
        self.index_path = Path(prefix + ".index")
        if not self.index_path.is_file():
            raise BundleError(f"{self.index_path}: checkpoint index not found (give the prefix, e.g. model.ckpt-best)")
        try:
            self._index = self.index_path.read_bytes()
            table = self._read_table()
        except BundleError:
            raise
        except (ValueError, IndexError, struct.error) as exc:
            raise BundleError(f"{self.index_path}: not a TensorFlow checkpoint index ({exc})") from None
        header = table.pop("", None)
        if header is None:
            raise BundleError(f"{self.index_path}: no bundle header (not a TensorFlow V2 checkpoint)")
        fields = dict(_fields(header))
        self.num_shards = int(fields.get(1, 1))
        if fields.get(2, 0) != 0:
            raise BundleError(f"{self.index_path}: a big-endian checkpoint; only little-endian ones are supported")
        self.entries = {name: _entry(name, value) for name, value in table.items()}

    # LevelDB table: footer -> index block -> data blocks -> entries
    def _block(self, offset: int, size: int) -> bytes:
        data = self._index[offset : offset + size]
        trailer = self._index[offset + size : offset + size + 5]
        if len(data) != size or len(trailer) != 5:
            raise BundleError(f"{self.index_path}: truncated (block at byte {offset})")
        kind, masked = trailer[0], struct.unpack("<I", trailer[1:])[0]
        if self.verify and crc32c(data + trailer[:1]) != _unmask(masked):
            raise BundleError(f"{self.index_path}: crc32c mismatch in the block at byte {offset} (file corrupted)")
        if kind == 1:
            return _snappy_decompress(data)
        if kind != 0:
            raise BundleError(f"{self.index_path}: unknown block compression {kind} at byte {offset}")
        return data

    @staticmethod
    def _entries(block: bytes) -> list[tuple[bytes, bytes]]:
        restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
        end = len(block) - 4 - 4 * restarts
        out, pos, key = [], 0, b""
        while pos < end:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            vlen, pos = _varint(block, pos)
            key = key[:shared] + block[pos : pos + unshared]
            pos += unshared
            out.append((key, block[pos : pos + vlen]))
            pos += vlen
        return out

    def _read_table(self) -> dict[str, bytes]:
        if len(self._index) < _FOOTER_SIZE:
            raise BundleError(f"{self.index_path}: too short for a table footer")
        footer = self._index[-_FOOTER_SIZE:]
        if struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
            raise BundleError(f"{self.index_path}: bad table magic number (not a TensorFlow V2 checkpoint index)")
        _, pos = _varint(footer, 0)  # metaindex handle (unused)
        _, pos = _varint(footer, pos)
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        table: dict[str, bytes] = {}
        for _, handle in self._entries(self._block(index_offset, index_size)):
            offset, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
            for key, value in self._entries(self._block(offset, size)):
                table[key.decode("utf-8")] = value
        return table

    # -- tensors
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor name -> shape."""
        return {name: e.shape for name, e in self.entries.items()}

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a numpy array (bfloat16 widened to float32)."""
        e = self.entries.get(name)
        if e is None:
            raise KeyError(f"{self.index_path}: no tensor {name!r}")
        if e.sliced:
            raise BundleError(f"{self.index_path}: {name} is a partitioned (sliced) variable, which is not supported")
        dtype = _DTYPES.get(e.dtype)
        if dtype is None:
            raise BundleError(f"{self.index_path}: {name} has TensorFlow dtype {e.dtype}, which albertkit cannot read")
        path = self.data_path(e.shard)
        try:
            with open(path, "rb") as fh:
                fh.seek(e.offset)
                raw = fh.read(e.size)
        except OSError as exc:
            raise BundleError(f"{path}: cannot read {name} ({exc})") from None
        if len(raw) != e.size:
            raise BundleError(f"{path}: truncated: {name} needs bytes {e.offset}..{e.offset + e.size}")
        if self.verify and crc32c(raw) != _unmask(e.crc32c):
            raise BundleError(f"{path}: crc32c mismatch for {name} (file corrupted)")
        if dtype == "bfloat16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=True)
        count = int(np.prod(e.shape)) if e.shape else 1
        if array.size != count:
            raise BundleError(f"{path}: {name} has {array.size} values for shape {list(e.shape)}")
        return array.reshape(e.shape)

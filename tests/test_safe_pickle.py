"""Data pickles never run code, load in their real layouts, and fail clearly and boundedly when
damaged (issue #11, item 1).

The fuzz test mutates real-layout pickles. CI runs ``ZCJAX_FUZZ_CASES`` mutations (default 600,
about two seconds); the issue's full run is ``ZCJAX_FUZZ_CASES=3000``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import resource
import struct
import time

import numpy as np
import pytest

from zcjax import data, safe_pickle
from zcjax.safe_pickle import MalformedPickleError, UnsafePickleError

FUZZ_CASES = int(os.environ.get("ZCJAX_FUZZ_CASES", "600"))


# -- files in the layout of the official ones ---------------------------------------------------

class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose opcodes we can choose
    """Writes protocol 2 as Python 2's cPickle did for the official CIFAR files: ``str`` and
    ``bytes`` as BINSTRING, NumPy's functions under ``numpy.core.multiarray``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)


def py2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_entry(n: int, rng) -> tuple[dict, np.ndarray]:
    nhwc = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    rows = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2).reshape(n, 3072))
    labels = [int(x) for x in rng.integers(0, 10, n)]
    entry = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": rows,
             b"filenames": [f"img_{i:05d}.png".encode() for i in range(n)]}
    return entry, nhwc


def write_test_batch(root, payload: bytes) -> str:
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "test_batch")
    with open(path, "wb") as f:
        f.write(payload)
    return path


def test_py2_layout_is_the_official_one():
    entry, _ = cifar_entry(2, np.random.default_rng(0))
    blob = py2_dumps(entry)
    # The opcodes of the official data_batch_1 (Python 2 cPickle, protocol 2).
    assert blob.startswith(b"\x80\x02}q\x00(U\x0bbatch_label")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in blob and b"cnumpy\ndtype\n" in blob


@pytest.mark.parametrize("dump", ["py2", 2, 4, 5])
def test_real_layouts_load(tmp_path, dump):
    entry, nhwc = cifar_entry(5, np.random.default_rng(1))
    blob = py2_dumps(entry) if dump == "py2" else pickle.dumps(entry, protocol=dump)
    write_test_batch(tmp_path, blob)
    images, labels = data.load_cifar(tmp_path, "cifar10", "test")
    np.testing.assert_array_equal(images, nhwc)
    np.testing.assert_array_equal(labels, entry[b"labels"])
    got = safe_pickle.loads(blob)
    if dump == "py2":  # Python 2 str, read with encoding="latin1": str keys and values
        assert got["filenames"][4] == "img_00004.png" and got["batch_label"].startswith("testing")
    else:
        assert got[b"filenames"][4] == b"img_00004.png"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numeric_arrays_and_scalars_round_trip(protocol):
    obj = {"f": np.arange(6, dtype=">f4").reshape(2, 3), "F": np.asfortranarray(np.eye(3)),
           "b": np.array([True, False]), "i": np.int64(-3), "mean": np.zeros(3),
           "e": np.zeros((0, 4)),
           "t": (1, 2.5, None, "x"), "s": {1, 2}}
    got = safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
    for k in ("f", "F", "b", "mean", "e"):
        np.testing.assert_array_equal(got[k], obj[k])
        assert got[k].dtype == obj[k].dtype and got[k].shape == obj[k].shape
    assert got["i"] == -3 and got["i"].dtype == np.int64
    assert got["t"] == obj["t"] and got["s"] == obj["s"]


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_crafted_payload_does_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [RunsCode(marker)]},
                           protocol=protocol)
    assert b"system" in payload
    path = write_test_batch(tmp_path, payload)
    with pytest.raises(UnsafePickleError, match=r"forbidden global (posix|os)\.system") as info:
        data.load_cifar(tmp_path, "cifar10", "test")
    assert path in str(info.value) and "malicious" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not marker.exists()
    # Before the fix: plain pickle.load ran the command.


@pytest.mark.parametrize("blob, match", [
    (b"cbuiltins\neval\n(S'1'\ntR.", "builtins.eval"),
    (b"(S'ls'\nios\nsystem\n.", r"os\.system"),                                  # INST
    (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05numpy\x8c\x04load\x93.", "numpy.load"),
    (b"\x80\x02cnumpy\nctypeslib\n.", "numpy.ctypeslib"),
    (b"\x80\x02X\x01\x00\x00\x00xQ.", "persistent"),
])
def test_other_globals_are_refused(blob, match):
    with pytest.raises(UnsafePickleError, match=match):
        safe_pickle.loads(blob)


@pytest.mark.parametrize("obj, match", [
    (np.array([object(), 1], dtype=object), "forbidden global|not a plain"),
    (np.zeros(2, dtype=[("a", "<i4")]), "structured|not a plain"),
    (np.array(["abc"]), "not a plain"),
])
def test_non_numeric_arrays_are_refused(obj, match):
    with pytest.raises(MalformedPickleError, match=match):
        safe_pickle.loads(pickle.dumps(obj, protocol=2))


def test_numpy_globals_cannot_be_misused():
    # ndarray((10**12,)) would allocate; _reconstruct with a real shape too.
    with pytest.raises(MalformedPickleError):
        safe_pickle.loads(b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x7f\x85\x85R.")
    with pytest.raises(MalformedPickleError, match="_reconstruct"):
        safe_pickle.loads(b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
                          b"J\x00\x00\x00\x7f\x85U\x01b\x87R.")
    with pytest.raises(MalformedPickleError, match="_codecs.encode"):
        safe_pickle.loads(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00x"
                          b"X\x04\x00\x00\x00zlib\x86R.")
    # An array whose declared shape does not match its bytes.
    blob = pickle.dumps(np.zeros((2, 3), np.uint8), protocol=2)
    blob = blob.replace(b"K\x02K\x03", b"K\x09K\x03")
    with pytest.raises(MalformedPickleError, match="needs 27 bytes"):
        safe_pickle.loads(blob)


def test_damage_that_crashes_plain_pickle_is_refused_before_building():
    # A tuple nested 10**6 deep used as a dict key: hash() overflows CPython's C stack (a
    # segfault with plain pickle.loads). Refused by the pre-scan.
    deep = b"\x80\x02}K\x01" + b"\x85" * 1_000_000 + b"K\x00s."
    with pytest.raises(MalformedPickleError, match="nested deeper"):
        safe_pickle.loads(deep)
    # A memo write at index 2**31 - 1: the C unpickler would grow its memo to billions of slots.
    with pytest.raises(MalformedPickleError, match="memo write"):
        safe_pickle.loads(b"\x80\x02K\x01r\xff\xff\xff\x7f.")
    with pytest.raises(MalformedPickleError, match="read before"):
        safe_pickle.loads(b"\x80\x02h\x05.")
    # A length field far beyond the file: no allocation of 2**62 bytes.
    with pytest.raises(MalformedPickleError, match="bytes8|remain"):
        safe_pickle.loads(b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"x.")


def test_size_cap(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"\x80\x02" + b"N" * 100 + b".")
    with pytest.raises(MalformedPickleError, match="more than the 64"):
        safe_pickle.load(path, max_bytes=64)
    assert safe_pickle.load(path) is None


def mutate(blob: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation; positions favour the structure around the pixel data."""
    b = bytearray(blob)
    n = len(b)
    structural = rng.random() < 0.8
    def pos() -> int:
        if structural:
            edge = int(rng.integers(0, 400))
            return edge if rng.random() < 0.5 else max(0, n - 1 - edge)
        return int(rng.integers(0, n))
    kind = int(rng.integers(0, 6))
    if kind == 0:    # random bytes
        for _ in range(int(rng.integers(1, 9))):
            b[min(pos(), n - 1)] = int(rng.integers(0, 256))
    elif kind == 1:  # an "interesting" 4-byte integer (lengths, memo indices)
        p = min(pos(), n - 4)
        b[p:p + 4] = struct.pack("<I", int(rng.choice([0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF,
                                                       0x80000000, 0xFFFFFFFF, 0x10000])))
    elif kind == 2:  # delete a range
        p = pos()
        del b[p:p + int(rng.integers(1, 64))]
    elif kind == 3:  # duplicate a range
        p = pos()
        b[p:p] = b[p:p + int(rng.integers(1, 64))]
    elif kind == 4:  # truncate
        del b[int(rng.integers(0, n)):]
    else:            # a random opcode byte
        opcodes = list(b"()}]lcRbsuaeKMJhqrXUTB\x85\x86\x87\x8c\x93\x94")
        b[min(pos(), n - 1)] = int(rng.choice(opcodes))
    return bytes(b)


def test_fuzz_mutated_pickles_give_clear_bounded_errors(tmp_path):
    rng = np.random.default_rng(11)
    entry, _ = cifar_entry(2, rng)
    bases = [py2_dumps(entry), pickle.dumps(entry, protocol=2), pickle.dumps(entry, protocol=5)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes: collections.Counter = collections.Counter()
    slowest = 0.0
    for i in range(FUZZ_CASES):
        path = write_test_batch(tmp_path, mutate(bases[i % len(bases)], rng))
        t0 = time.perf_counter()
        try:
            images, labels = data.load_cifar(tmp_path, "cifar10", "test")
            assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
            outcomes["loaded"] += 1
        except ValueError as e:  # the only acceptable failure, and it names the file
            assert path in str(e), str(e)[:300]
            assert len(str(e)) < 1200
            outcomes[type(e).__name__] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"\n{FUZZ_CASES} mutations: {dict(outcomes)}; slowest {slowest:.3f} s; "
          f"peak RSS +{rss_growth_mb:.0f} MB")
    assert slowest < 2.0
    assert rss_growth_mb < 256
    assert outcomes["MalformedPickleError"] > FUZZ_CASES // 4

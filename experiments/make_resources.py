r"""Converts the NAS-Bench-201 robustness dataset into compact package data.

Reads the JSON files of the robustness dataset (Jung, Lukasik & Keuper, "Neural Architecture
Design and Robustness: A Dataset", ICLR 2023; https://github.com/steffen-jung/robustness-dataset)
and writes ``zcjax/resources/nb201_robustness.npz``, which :mod:`zcjax.benchmarks.robustness`
reads at run time. Usage::

    python experiments/make_resources.py --data_root=/work/shared/data

Input layout (``<data_root>/robustness``)::

    meta.json                      ids[str(index)] = {"nb201-string", "isomorph"}, 15,625 entries
                                   epsilons[attack] = [radius, ...] in units of 1/255
    <dataset>/<key>_accuracy.json  {dataset: {key: {"accuracy": {isomorph_id: value | [values]}}}}

Output (a standard ``.npz``; every member is a ``.npy`` array):

    format_version              int64 scalar, 1
    scale                       int64 scalar, 1000: accuracy = code / scale
    missing_code                int64 scalar, 65535: code of a missing value (decoded as NaN)
    isomorph_ids                int32 (6466,): the evaluated architectures (smallest NB201 index
                                of each isomorphism class), ascending; row r of every table
                                belongs to isomorph_ids[r]
    isomorph_of_index           int32 (15625,): isomorphism id of every NB201 index (meta.json)
    epsilons/<attack>           float64 (n_eps,): L-inf radii in units of 1/255
    acc/<dataset>/<key>         uint16: (6466,) for "clean", (6466, n_eps) for an attack,
                                (6466, 5) for a corruption (severities 1..5)

Every accuracy in the source has at most three decimals (the evaluations use 1,000 images), so
storing ``round(1000 * value)`` as ``uint16`` is lossless: ``code / 1000`` in float64 is the
correctly rounded quotient and equals the float parsed from the JSON text. The script checks that
for every value and refuses to write otherwise; it then reads its output back and compares again.

The output is byte-for-byte deterministic: members are written in sorted order with a fixed
timestamp.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np
from absl import app, flags, logging

_DATA_ROOT = flags.DEFINE_string(
    "data_root", "../shared/data",
    "Folder holding robustness/meta.json and robustness/<dataset>/<key>_accuracy.json "
    "(the ground-truth data folder of the project, see its README.md).")
_OUT = flags.DEFINE_string(
    "out", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "zcjax", "resources", "nb201_robustness.npz"),
    "Where to write the npz.")

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
ATTACKS = ("fgsm@Linf", "pgd@Linf", "aa_apgd-ce@Linf", "aa_square@Linf")
CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost",
    "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur",
    "pixelate", "shot_noise", "snow", "zoom_blur",
)
NUM_SEVERITIES = 5
NUM_CELLS = 15625
SCALE = 1000
MISSING = np.iinfo(np.uint16).max
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def keys_for(dataset: str) -> tuple[str, ...]:
    """The evaluation keys the dataset has for ``dataset`` (corruptions only on CIFAR)."""
    keys = ("clean",) + ATTACKS
    if dataset != "ImageNet16-120":
        keys += CORRUPTIONS
    return keys


def read_meta(root: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Returns (isomorph_ids, isomorph_of_index, epsilons) from ``meta.json``."""
    with open(os.path.join(root, "meta.json")) as f:
        meta = json.load(f)
    ids = meta["ids"]
    if sorted(map(int, ids)) != list(range(NUM_CELLS)):
        raise ValueError(f"meta.json: expected ids 0..{NUM_CELLS - 1}")
    iso_of_index = np.array([int(ids[str(i)]["isomorph"]) for i in range(NUM_CELLS)], np.int32)
    iso_ids = np.unique(iso_of_index).astype(np.int32)
    # The isomorphism id is the smallest index of its class.
    for i, iso in enumerate(iso_of_index):
        if iso > i or iso_of_index[iso] != iso:
            raise ValueError(f"meta.json: index {i} has isomorph {iso}, not a class minimum")
    eps = {a: np.asarray(meta["epsilons"][a], np.float64) for a in ATTACKS}
    if set(meta["epsilons"]) != set(ATTACKS):
        raise ValueError(f"meta.json: attacks {sorted(meta['epsilons'])} != {sorted(ATTACKS)}")
    return iso_ids, iso_of_index, eps


def read_accuracy(root: str, dataset: str, key: str) -> dict[str, Any]:
    """The ``{isomorph_id: value | [values]}`` mapping of one JSON file."""
    with open(os.path.join(root, dataset, f"{key}_accuracy.json")) as f:
        return json.load(f)[dataset][key]["accuracy"]


def encode(values: dict[str, Any], iso_ids: np.ndarray, width: int | None,
           where: str) -> np.ndarray:
    """Encodes one table as uint16 thousandths, ``MISSING`` where an id has no value."""
    shape = (len(iso_ids),) if width is None else (len(iso_ids), width)
    codes = np.full(shape, MISSING, np.uint16)
    known = {str(int(i)) for i in iso_ids}
    extra = set(values) - known
    if extra:
        raise ValueError(f"{where}: ids not in meta.json: {sorted(extra)[:5]}")
    for row, iso in enumerate(iso_ids):
        v = values.get(str(int(iso)))
        if v is None:
            continue
        vs = [v] if width is None else list(v)
        if width is not None and len(vs) != width:
            raise ValueError(f"{where}: id {iso} has {len(vs)} values, expected {width}")
        for col, x in enumerate(vs):
            if x is None:
                continue
            x = float(x)
            c = round(x * SCALE)
            if not (0 <= c <= SCALE and c / SCALE == x):
                raise ValueError(f"{where}: id {iso} value {x!r} is not a multiple of 1/{SCALE} "
                                 "in [0, 1]; the uint16 encoding would lose it")
            if width is None:
                codes[row] = c
            else:
                codes[row, col] = c
    return codes


def convert(data_root: str) -> dict[str, np.ndarray]:
    """All arrays of the npz, keyed by member name."""
    root = os.path.join(data_root, "robustness")
    iso_ids, iso_of_index, eps = read_meta(root)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.asarray(1, np.int64),
        "scale": np.asarray(SCALE, np.int64),
        "missing_code": np.asarray(MISSING, np.int64),
        "isomorph_ids": iso_ids,
        "isomorph_of_index": iso_of_index,
    }
    for attack in ATTACKS:
        arrays[f"epsilons/{attack}"] = eps[attack]
    for dataset in DATASETS:
        for key in keys_for(dataset):
            if key == "clean":
                width = None
            elif key in ATTACKS:
                width = len(eps[key])
            else:
                width = NUM_SEVERITIES
            values = read_accuracy(root, dataset, key)
            codes = encode(values, iso_ids, width, f"{dataset}/{key}")
            n_missing = int((codes == MISSING).sum())
            if n_missing:
                logging.warning("%s/%s: %d missing values", dataset, key, n_missing)
            arrays[f"acc/{dataset}/{key}"] = codes
    return arrays


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes a deterministic, deflate-compressed npz (sorted members, fixed timestamps)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name], order="C"),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)


def verify(path: str, data_root: str) -> None:
    """Reads the npz back and checks every value against the JSON exactly."""
    root = os.path.join(data_root, "robustness")
    with np.load(path) as z:
        iso_ids = z["isomorph_ids"]
        for dataset in DATASETS:
            for key in keys_for(dataset):
                decoded = z[f"acc/{dataset}/{key}"].astype(np.float64) / SCALE
                values = read_accuracy(root, dataset, key)
                for row, iso in enumerate(iso_ids):
                    want = np.asarray(values[str(int(iso))], np.float64)
                    if not np.array_equal(decoded[row], want):
                        raise AssertionError(f"{dataset}/{key} id {iso}: "
                                             f"{decoded[row]} != {want}")


def main(argv: list[str]) -> None:
    del argv
    arrays = convert(_DATA_ROOT.value)
    write_npz(_OUT.value, arrays)
    verify(_OUT.value, _DATA_ROOT.value)
    logging.info("wrote %s (%d bytes, %d arrays), verified against the JSON",
                 _OUT.value, os.path.getsize(_OUT.value), len(arrays))
    print(f"wrote {_OUT.value}: {os.path.getsize(_OUT.value)} bytes")


if __name__ == "__main__":
    app.run(main)

"""NDS ResNet and ResNeXt-A architectures: genotypes, their strings, their design spaces.

Radosavovic, Johnson, Xie, Lo & Dollar, "On Network Design Spaces for Visual Recognition",
ICCV 2019 (NDS). The networks are pycls ``AnyNet`` models for CIFAR (``facebookresearch/pycls``,
the release that trained NDS: ``pycls/models/anynet.py`` at its initial commit): a stem, three
stages of residual blocks, a head. An architecture fixes, per stage ``i``, the depth ``d_i``
(blocks) and the width ``w_i`` (output channels of every block); the ResNeXt design spaces add
the bottleneck multiplier ``bm_i`` (the bottleneck width is ``round(w_i * bm_i)``) and the number
of groups ``g_i`` of the bottleneck's 3x3 convolution. The stem's width is 16 in every CIFAR
record; the stage strides are 1, 2, 2.

This module imports neither JAX nor Flax (the ground-truth reader uses it).

The published files
-------------------
The NDS sweep files (``ResNet.json``, ``ResNeXt-A.json``, ...) are lists of job records whose
``net`` entry holds pycls's AnyNet options as lists with one entry for the stem followed by one
per stage (read this way by Ning et al.'s ``walkerning/aw_nas`` NDS scripts and by NNI's NDS
benchmark, whose documented example is a real ResNeXt-A record)::

    {"block_type": "res_bottleneck_block", "ds": [1, 16, 1, 4], "ws": [16, 64, 128, 16],
     "ss": [1, 1, 2, 2], "bot_muls": [0.0, 0.25, 0.25, 0.25], "num_gs": [1, 2, 1, 2]}

``ds[0] = 1``, ``ws[0]`` (the stem width) and ``ss[0] = 1`` describe the CIFAR stem (3x3
convolution, batch norm, ReLU); ResNet records have basic blocks (``res_basic_block``) and empty
``bot_muls`` / ``num_gs``. :meth:`NDSArch.from_record` reads such a ``net``,
:meth:`NDSArch.to_record` writes one.

String form
-----------
::

    ResNet:stem=16;d=9,9,9;w=16,32,64
    ResNeXt-A:stem=16;d=16,1,4;w=64,128,16;bm=0.25,0.25,0.25;g=2,1,2

The design space, a colon, then ``key=values`` fields separated by ``;``: ``stem`` (stem width),
``d`` (depths), ``w`` (widths), and for ResNeXt-A ``bm`` (bottleneck multipliers, the files'
``bot_muls``) and ``g`` (groups, the files' ``num_gs``), one value per stage separated by ``,``.
Integers are written in plain decimal; multipliers as the shortest decimal that reads back
exactly, without an exponent (``0.25``, ``1.0``).
:meth:`NDSArch.to_string` writes the fields in this order; :meth:`NDSArch.from_string` takes
them in any order.

Canonical form
--------------
Every architecture is its own class, except that two multipliers giving the same bottleneck
width build the same network (pycls computes ``w_b = int(round(w * bm))``; e.g. ``bm = 0.25`` and
``0.26`` at ``w = 16`` both give ``w_b = 4``). :meth:`NDSArch.canonical` therefore writes the
bottleneck widths (``wb=``) instead of the multipliers. Within the design spaces' grids no two
multipliers collide, so there every architecture is its own class. A ResNeXt-A network with
``bm = 1, g = 1`` is still not a ResNet network (bottleneck, not basic, blocks).

Design spaces and sampling
--------------------------
NDS, Table 1: for each of the three stages independently, ``a, b, n`` means ``n`` values spaced
about evenly (in log space) from ``a`` to ``b``:

=============  ==================  ===================  ==========================  ===========
space          depths ``d``        widths ``w``         bottleneck ratio            groups ``g``
=============  ==================  ===================  ==========================  ===========
ResNet         1, 24, 9            16, 256, 12          --                          --
ResNeXt-A      1, 16, 5            16, 256, 5           1, 4, 3 (``bm`` = 1/ratio)  1, 4, 3
=============  ==================  ===================  ==========================  ===========

The value sets are those of :data:`RESNET` and :data:`RESNEXT_A` (also the choices of the
``aw_nas`` supernets that evaluate every architecture of the published files):
(9 * 12)^3 = 1,259,712 ResNet and (5 * 5 * 3 * 3)^3 = 11,390,625 ResNeXt-A networks.
:meth:`DesignSpace.sample` draws every stage's values uniformly and independently, as NDS
sampled its models, but returns distinct architectures (the published sweeps hold repeats).

A genotype need not lie on these grids (pycls's ResNet-56 has ``d = 9, 9, 9``); the ground-truth
reader checks that every published record does (:meth:`DesignSpace.check_member`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Mapping, Sequence

import numpy as np

from zcjax.validation import cap, check_int, check_seed

#: Stages of the NDS CIFAR networks, and the stride of each stage's first block.
NUM_STAGES = 3
STRIDES: tuple[int, ...] = (1, 2, 2)
#: The stem of every NDS CIFAR record: width 16, stride 1 (pycls ``res_stem_cifar``).
STEM_WIDTH = 16

#: Guards against strings that would build absurd networks (NDS itself stays far below: depths
#: up to 24, widths up to 1024 in ResNeXt-B).
MAX_DEPTH = 256
MAX_WIDTH = 8192

BASIC_BLOCK = "res_basic_block"
BOTTLENECK_BLOCK = "res_bottleneck_block"


@dataclasses.dataclass(frozen=True)
class DesignSpace:
    """One NDS design space: its block type and, per stage, the values it samples from.

    Attributes:
      name: the name of the published file (``"ResNet"``, ``"ResNeXt-A"``).
      block_type: pycls's block type, ``res_basic_block`` or ``res_bottleneck_block``.
      depths, widths: the per-stage value sets (Table 1).
      bot_muls, num_groups: the same for bottleneck multipliers and groups (empty for basic
        blocks).
    """

    name: str
    block_type: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    bot_muls: tuple[float, ...] = ()
    num_groups: tuple[int, ...] = ()

    @property
    def bottleneck(self) -> bool:
        """Whether the blocks are bottleneck blocks (with multipliers and groups)."""
        return self.block_type == BOTTLENECK_BLOCK

    @property
    def size(self) -> int:
        """The number of architectures in the grid."""
        per_stage = len(self.depths) * len(self.widths)
        if self.bottleneck:
            per_stage *= len(self.bot_muls) * len(self.num_groups)
        return per_stage ** NUM_STAGES

    def check_member(self, arch: "NDSArch") -> None:
        """Raises ``ValueError`` naming the first value of ``arch`` outside this grid."""
        if arch.design_space != self.name:
            raise ValueError(f"a {arch.design_space} architecture is not in {self.name}")
        if arch.stem_width != STEM_WIDTH:
            raise ValueError(f"stem width {arch.stem_width} is not the NDS CIFAR stem's "
                             f"{STEM_WIDTH}")
        fields = [("depth", arch.depths, self.depths), ("width", arch.widths, self.widths)]
        if self.bottleneck:
            fields += [("bottleneck multiplier", arch.bot_muls, self.bot_muls),
                       ("groups", arch.num_groups, self.num_groups)]
        for what, values, allowed in fields:
            for stage, value in enumerate(values, start=1):
                if value not in allowed:
                    raise ValueError(f"{what} {value} of stage {stage} is outside the "
                                     f"{self.name} design space {allowed}")

    def contains(self, arch: "NDSArch") -> bool:
        """Whether ``arch`` lies on this design space's grid."""
        try:
            self.check_member(arch)
        except ValueError:
            return False
        return True

    def sample(self, n: int, seed: int = 0) -> list["NDSArch"]:
        """``n`` distinct architectures, each stage's values drawn uniformly (seeded).

        Draws are made in order and repeats are skipped, so the first ``k`` of ``sample(n, s)``
        are ``sample(k, s)``.
        """
        n = check_int(n, "n", 1, self.size)
        rng = np.random.default_rng(check_seed(seed))
        out: list[NDSArch] = []
        seen: set[NDSArch] = set()
        while len(out) < n:
            arch = self._draw(rng)
            if arch not in seen:
                seen.add(arch)
                out.append(arch)
        return out

    def _draw(self, rng: np.random.Generator) -> "NDSArch":
        def pick(values: Sequence) -> tuple:
            return tuple(values[int(i)] for i in rng.integers(len(values), size=NUM_STAGES))

        depths, widths = pick(self.depths), pick(self.widths)
        if not self.bottleneck:
            return NDSArch(self.name, depths, widths)
        return NDSArch(self.name, depths, widths, pick(self.bot_muls), pick(self.num_groups))


#: NDS ResNet: basic residual blocks (Table 1: d = 1, 24, 9; w = 16, 256, 12).
RESNET = DesignSpace("ResNet", BASIC_BLOCK,
                     depths=(1, 2, 3, 4, 6, 8, 12, 16, 24),
                     widths=(16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256))
#: NDS ResNeXt-A: bottleneck blocks with a grouped 3x3 convolution (Table 1: d = 1, 16, 5;
#: w = 16, 256, 5; bottleneck ratio = 1, 4, 3; g = 1, 4, 3).
RESNEXT_A = DesignSpace("ResNeXt-A", BOTTLENECK_BLOCK,
                        depths=(1, 2, 4, 8, 16), widths=(16, 32, 64, 128, 256),
                        bot_muls=(0.25, 0.5, 1.0), num_groups=(1, 2, 4))

DESIGN_SPACES: dict[str, DesignSpace] = {d.name: d for d in (RESNET, RESNEXT_A)}


def get_design_space(name: "str | DesignSpace") -> DesignSpace:
    """The design space called ``name``; a clear error naming the known ones otherwise."""
    if isinstance(name, DesignSpace):
        return name
    try:
        return DESIGN_SPACES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown NDS design space {cap(repr(name))}; known: "
                         f"{', '.join(DESIGN_SPACES)}") from None


def _positive(value: Any, what: str, hi: int) -> int:
    return check_int(value, what, 1, hi)


def _multiplier(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {cap(repr(value), 80)}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, got {value}")
    return value


def bottleneck_width(width: int, bot_mul: float) -> int:
    """pycls's bottleneck width ``int(round(width * bot_mul))`` (Python's round, half to even)."""
    return int(round(width * bot_mul))


@dataclasses.dataclass(frozen=True)
class NDSArch:
    """An immutable, hashable NDS ResNet / ResNeXt-A architecture (three stages).

    Attributes:
      design_space: ``"ResNet"`` or ``"ResNeXt-A"`` (its block type: :attr:`block_type`).
      depths: blocks per stage.
      widths: output channels of every block of a stage.
      bot_muls: ResNeXt-A only: bottleneck multipliers (bottleneck width ``round(w * bm)``).
      num_groups: ResNeXt-A only: groups of the 3x3 convolution; must divide the bottleneck width.
      stem_width: output channels of the stem (16 in every NDS CIFAR record).

    Raises ``ValueError`` naming what is wrong: an unknown design space, not three stages,
    a non-positive or non-integer depth or width, multipliers or groups where the design space
    has none (or missing where it has them), groups that do not divide the bottleneck width.
    """

    design_space: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    bot_muls: tuple[float, ...] = ()
    num_groups: tuple[int, ...] = ()
    stem_width: int = STEM_WIDTH

    def __post_init__(self):
        space = get_design_space(self.design_space)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("stem_width", _positive(self.stem_width, "stem width", MAX_WIDTH))
        set_("depths", self._per_stage(self.depths, "depth",
                                       lambda v, w: _positive(v, w, MAX_DEPTH)))
        set_("widths", self._per_stage(self.widths, "width",
                                       lambda v, w: _positive(v, w, MAX_WIDTH)))
        if not space.bottleneck:
            if len(self.bot_muls) or len(self.num_groups):
                raise ValueError(f"{space.name} has basic blocks: no bottleneck multipliers or "
                                 f"groups (got {cap(self.bot_muls, 80)}, "
                                 f"{cap(self.num_groups, 80)})")
            set_("bot_muls", ())
            set_("num_groups", ())
            return
        set_("bot_muls", self._per_stage(self.bot_muls, "bottleneck multiplier", _multiplier))
        set_("num_groups", self._per_stage(self.num_groups, "groups",
                                           lambda v, w: _positive(v, w, MAX_WIDTH)))
        for stage, (w, bm, g) in enumerate(zip(self.widths, self.bot_muls, self.num_groups), 1):
            w_b = bottleneck_width(w, bm)
            if w_b < 1:
                raise ValueError(f"stage {stage}: bottleneck width round({w} * {bm}) = {w_b} "
                                 "has no channels")
            if w_b % g:
                raise ValueError(f"stage {stage}: {g} groups do not divide the bottleneck "
                                 f"width {w_b} = round({w} * {bm})")

    @staticmethod
    def _per_stage(values: Any, what: str, check) -> tuple:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"{what}s must be a sequence of {NUM_STAGES} values, got "
                             f"{cap(repr(values), 80)}")
        if len(values) != NUM_STAGES:
            raise ValueError(f"expected {NUM_STAGES} stages of {what}s, got {len(values)}: "
                             f"{cap(repr(tuple(values)), 80)}")
        return tuple(check(v, f"{what} of stage {i}") for i, v in enumerate(values, start=1))

    # -- structure ------------------------------------------------------------------------

    @property
    def space(self) -> DesignSpace:
        return DESIGN_SPACES[self.design_space]

    @property
    def block_type(self) -> str:
        """pycls's block type: ``res_basic_block`` (ResNet), ``res_bottleneck_block`` (ResNeXt)."""
        return self.space.block_type

    @property
    def bottleneck_widths(self) -> tuple[int, ...]:
        """Per stage, the bottleneck width ``round(w * bm)`` (empty for basic blocks)."""
        return tuple(bottleneck_width(w, bm) for w, bm in zip(self.widths, self.bot_muls))

    def blocks(self) -> tuple["BlockSpec", ...]:
        """Every residual block in forward order (the layout network and cost both read)."""
        out = []
        w_in = self.stem_width
        for stage in range(NUM_STAGES):
            w = self.widths[stage]
            w_b = self.bottleneck_widths[stage] if self.bot_muls else None
            g = self.num_groups[stage] if self.num_groups else 1
            for i in range(self.depths[stage]):
                out.append(BlockSpec(stage, i, w_in, w, STRIDES[stage] if i == 0 else 1, w_b, g))
                w_in = w
        return tuple(out)

    def capped(self, max_depth: int | None = None, max_width: int | None = None) -> "NDSArch":
        """The architecture with every depth and width (stem included) cut to the caps.

        For small test networks; the result must still be valid (groups dividing the cut
        bottleneck widths), else ``ValueError``.
        """
        d = self.depths if max_depth is None else tuple(min(x, max_depth) for x in self.depths)
        if max_width is None:
            return dataclasses.replace(self, depths=d)
        return dataclasses.replace(self, depths=d,
                                   widths=tuple(min(x, max_width) for x in self.widths),
                                   stem_width=min(self.stem_width, max_width))

    # -- strings --------------------------------------------------------------------------

    def to_string(self) -> str:
        """The architecture string (see the module doc)."""
        fields = [f"stem={self.stem_width}", "d=" + _ints(self.depths),
                  "w=" + _ints(self.widths)]
        if self.space.bottleneck:
            fields += ["bm=" + ",".join(_float(b) for b in self.bot_muls),
                       "g=" + _ints(self.num_groups)]
        return f"{self.design_space}:" + ";".join(fields)

    def __str__(self) -> str:
        return self.to_string()

    def canonical(self) -> str:
        """A string shared exactly by architectures that build the same network.

        The string form with bottleneck widths (``wb=``) in place of the multipliers (see the
        module doc).
        """
        if not self.space.bottleneck:
            return self.to_string()
        return (f"{self.design_space}:stem={self.stem_width};d={_ints(self.depths)};"
                f"w={_ints(self.widths)};wb={_ints(self.bottleneck_widths)};"
                f"g={_ints(self.num_groups)}")

    @classmethod
    def from_string(cls, text: str) -> "NDSArch":
        """Parses an architecture string; ``ValueError`` naming what is wrong."""
        if not isinstance(text, str):
            raise ValueError(f"expected an NDS architecture string, got {type(text).__name__}")
        shown = repr(cap(text))
        name, colon, body = text.partition(":")
        if not colon:
            raise ValueError(f"{shown}: expected '<design space>:stem=..;d=..;w=..', "
                             "e.g. 'ResNet:stem=16;d=9,9,9;w=16,32,64'")
        if name not in DESIGN_SPACES:
            raise ValueError(f"{shown}: unknown NDS design space {cap(name, 40)!r}; known: "
                             f"{', '.join(DESIGN_SPACES)}")
        space = DESIGN_SPACES[name]
        required = ["stem", "d", "w"] + (["bm", "g"] if space.bottleneck else [])
        fields: dict[str, str] = {}
        for item in body.split(";"):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"{shown}: field {cap(item, 40)!r} is not 'key=values'")
            if key not in required:
                raise ValueError(f"{shown}: unknown field {cap(key, 40)!r} for {name}; "
                                 f"expected {', '.join(required)}")
            if key in fields:
                raise ValueError(f"{shown}: field {key!r} given twice")
            fields[key] = value
        missing = [k for k in required if k not in fields]
        if missing:
            raise ValueError(f"{shown}: missing field(s) {', '.join(missing)}")
        try:
            stem = _int_text(fields["stem"], "stem width")
            depths = [_int_text(v, "depth") for v in fields["d"].split(",")]
            widths = [_int_text(v, "width") for v in fields["w"].split(",")]
            bot_muls = [_float_text(v) for v in fields["bm"].split(",")] if "bm" in fields else []
            groups = [_int_text(v, "groups") for v in fields["g"].split(",")] if "g" in fields \
                else []
            return cls(name, tuple(depths), tuple(widths), tuple(bot_muls), tuple(groups), stem)
        except ValueError as e:
            raise ValueError(f"{shown}: {e}") from None

    # -- the published files' encoding ----------------------------------------------------

    @classmethod
    def from_record(cls, net: Mapping[str, Any], design_space: "str | DesignSpace") -> "NDSArch":
        """The architecture of an NDS record's ``net`` (see the module doc).

        Checks what the network depends on: the block type of ``design_space``, four entries
        (stem + three stages) in ``ds``, ``ws``, ``ss`` (and ``bot_muls``, ``num_gs`` for
        bottleneck blocks, which must be empty for basic blocks), the CIFAR stem (``ds[0] = 1``,
        ``ss[0] = 1``) and stage strides 1, 2, 2, and no squeeze-excitation (``se_r``) or other
        stem type. Other keys are ignored.
        """
        space = get_design_space(design_space)
        if not isinstance(net, Mapping):
            raise ValueError(f"'net' must be an object, got {type(net).__name__}")
        block = net.get("block_type")
        if block != space.block_type:
            raise ValueError(f"block_type {cap(repr(block), 60)} is not {space.name}'s "
                             f"{space.block_type!r}")
        if net.get("se_r"):
            raise ValueError(f"squeeze-excitation (se_r={cap(repr(net['se_r']), 40)}) is not "
                             "part of the NDS ResNet / ResNeXt design spaces")
        stem_type = net.get("stem_type", "res_stem_cifar")
        if stem_type != "res_stem_cifar":
            raise ValueError(f"stem_type {cap(repr(stem_type), 60)} is not the CIFAR stem "
                             "'res_stem_cifar' (ImageNet records are not supported)")

        def entries(key: str) -> list:
            value = net.get(key)
            if not isinstance(value, list) or len(value) != NUM_STAGES + 1:
                raise ValueError(f"'{key}' must be a list of {NUM_STAGES + 1} entries (stem, then "
                                 f"one per stage), got {cap(repr(value), 80)}")
            return value

        ds, ws, ss = entries("ds"), entries("ws"), entries("ss")
        if ds[0] != 1 or ss[0] != 1:
            raise ValueError(f"ds[0] = {cap(repr(ds[0]), 20)} and ss[0] = {cap(repr(ss[0]), 20)}"
                             " must both be 1 (the CIFAR stem)")
        if list(ss[1:]) != list(STRIDES):
            raise ValueError(f"stage strides {cap(repr(ss[1:]), 60)} are not the NDS CIFAR "
                             f"strides {list(STRIDES)}")
        if space.bottleneck:
            bot_muls, num_gs = entries("bot_muls")[1:], entries("num_gs")[1:]
        else:
            for key in ("bot_muls", "num_gs"):
                if net.get(key):
                    raise ValueError(f"'{key}' must be empty for basic blocks, got "
                                     f"{cap(repr(net[key]), 80)}")
            bot_muls, num_gs = [], []
        return cls(space.name, tuple(ds[1:]), tuple(ws[1:]), tuple(bot_muls), tuple(num_gs),
                   ws[0])

    def to_record(self) -> dict[str, Any]:
        """The ``net`` entry an NDS record has for this architecture (see :meth:`from_record`)."""
        bottleneck = self.space.bottleneck
        return {
            "block_type": self.block_type,
            "ds": [1, *self.depths],
            "ws": [self.stem_width, *self.widths],
            "ss": [1, *STRIDES],
            "bot_muls": [0.0, *self.bot_muls] if bottleneck else [],
            "num_gs": [1, *self.num_groups] if bottleneck else [],
        }


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One residual block: where it is and its shapes.

    ``w_b`` is the bottleneck width (``None`` for a basic block), ``groups`` the groups of its
    3x3 convolution. The block projects its shortcut (1x1 convolution + batch norm) when
    ``w_in != w_out`` or ``stride != 1``, as pycls does.
    """

    stage: int
    index: int
    w_in: int
    w_out: int
    stride: int
    w_b: int | None
    groups: int

    @property
    def projects(self) -> bool:
        return self.w_in != self.w_out or self.stride != 1


def _ints(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


def _float(value: float) -> str:
    """The shortest decimal that reads back as ``value``, never in exponent form (``0.25``,
    ``1.0``, ``0.00007``)."""
    return np.format_float_positional(value, unique=True, trim="0")


_INT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")


def _int_text(text: str, what: str) -> int:
    """An integer written in plain decimal (ASCII digits, no sign, no leading zero)."""
    if not _INT.fullmatch(text) or (len(text) > 1 and text[0] == "0"):
        raise ValueError(f"{what} {cap(text, 40)!r} is not an integer in plain decimal")
    return int(text)


def _float_text(text: str) -> float:
    """A multiplier written as digits with an optional decimal part (``0.25``, ``1.0``, ``1``)."""
    if not _FLOAT.fullmatch(text):
        raise ValueError(f"bottleneck multiplier {cap(text, 40)!r} is not a decimal number")
    return float(text)

"""NAS-Bench-101: cells, pruning, the graph hash, the network's conventions, costs, ground truth.

Reference facts checked here:

- ``KNOWN``: five cells of the NAS-Bench-101 dataset with their graph hash and the benchmark's
  ``trainable_parameters`` (as stored in NASLib's test asset ``tests/assets/nb101_dummy.pkl``,
  a 30-cell extract of the official dataset; two of them pruned to 6 vertices);
- the issue's two cells: 4,095,778 and 1,749,031 parameters (zero-cost-nas's PyTorch network;
  NASLib's ``NASBench-PyTorch`` model adds 18 and 36 unused placeholder scalars);
- ``SAMPLED``: NASLib's test of its random sampler, ``np.random.seed(9001)`` then one draw.
"""

from __future__ import annotations

import itertools
import math
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import contract, spaces
from zcjax.spaces import layers
from zcjax.spaces.nb101 import cost, genotype, isomorphism, network
from zcjax.spaces.nb101.genotype import NB101Cell

SPACE = spaces.get("nb101")

ISSUE_1 = ("0111101 0000011 0000001 0000110 0000011 0000000 0000000 "
           "input maxpool3x3 maxpool3x3 conv3x3 conv3x3 conv3x3 output")
ISSUE_2 = ("0110010 0001111 0000001 0000010 0000011 0000000 0000000 "
           "input conv3x3 maxpool3x3 conv1x1 conv1x1 maxpool3x3 output")
PROJECTION_ONLY = "01 00 input output"

#: (graph hash, cell as stored by the benchmark, trainable_parameters)
KNOWN = [
    ("ff940d27cbe9ed0a639a68a9c3f87283",
     "0110110 0000100 0001000 0000100 0000010 0000001 0000000 "
     "input maxpool3x3 conv3x3-bn-relu conv1x1-bn-relu conv1x1-bn-relu conv3x3-bn-relu output",
     24169098),
    ("ff958f8d8f556448ff2a5973f17ff22a",
     "011001 000011 000100 000011 000001 000000 "
     "input conv3x3-bn-relu conv1x1-bn-relu maxpool3x3 maxpool3x3 output", 2624049),
    ("ff9707907f5c17ef8f80cc68fff30f74",
     "010101 001000 000100 000010 000001 000000 "
     "input conv1x1-bn-relu conv1x1-bn-relu maxpool3x3 conv3x3-bn-relu output", 14000266),
    ("ff94b7dac93961c7a5fa561d395ccc88",
     "0100001 0010000 0001000 0000100 0000010 0000001 0000000 "
     "input conv1x1-bn-relu conv1x1-bn-relu maxpool3x3 conv1x1-bn-relu maxpool3x3 output",
     4869002),
    ("ff92c322c5d9d3d587d9c146a63d0807",
     "0101000 0011100 0001000 0000001 0000010 0000001 0000000 "
     "input conv3x3-bn-relu conv1x1-bn-relu conv1x1-bn-relu conv3x3-bn-relu conv1x1-bn-relu "
     "output", 6315018),
]

SAMPLED = (0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1,
           0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 2, 3, 3, 1)


def _relabelled(cell: NB101Cell, perm: tuple[int, ...]) -> NB101Cell | None:
    """The same graph with the interior vertices in the order ``perm`` (old indices), or
    ``None`` when that order is not a topological one (the matrix would not be upper
    triangular)."""
    order = (0, *perm, cell.num_vertices - 1)  # new index -> old index
    m = [[cell.matrix[order[i]][order[j]] for j in range(len(order))]
         for i in range(len(order))]
    if any(m[i][j] for i in range(len(m)) for j in range(i + 1)):
        return None
    return NB101Cell(tuple(map(tuple, m)), tuple(cell.ops[k] for k in order))


def _relabellings(cell: NB101Cell) -> list[NB101Cell]:
    """Every other vertex order of the same graph (isomorphic cells with other strings)."""
    interior = range(1, cell.num_vertices - 1)
    out = [_relabelled(cell, p) for p in itertools.permutations(interior)]
    return [c for c in out if c is not None and c != cell]


# -- strings, encodings, validation ----------------------------------------------------------

@pytest.mark.parametrize("text", [ISSUE_1, ISSUE_2, PROJECTION_ONLY] + [k[1] for k in KNOWN])
def test_strings_round_trip(text):
    cell = SPACE.parse(text)
    assert SPACE.parse(SPACE.format(cell)) == cell
    assert NB101Cell.from_naslib_tuple(cell.to_naslib_tuple()) == cell
    assert NB101Cell.from_spec(*cell.to_spec()) == cell
    assert hash(cell) == hash(SPACE.parse(SPACE.format(cell)))


def test_string_form():
    cell = SPACE.parse(ISSUE_1)
    assert SPACE.format(cell) == ISSUE_1
    assert cell.ops == ("input", "maxpool3x3", "maxpool3x3", "conv3x3", "conv3x3", "conv3x3",
                        "output")
    # The benchmark's labels and extra whitespace are read; the string is written short.
    long = ISSUE_1.replace("conv3x3", "conv3x3-bn-relu").replace(" ", "  ")
    assert SPACE.parse("\n" + long + " ") == cell
    assert cell.to_spec()[1][3] == "conv3x3-bn-relu"


@pytest.mark.parametrize("text, message", [
    ("0111101 0000011 input output", "2 rows of 2 digits|row 0"),
    ("01 00 00 input output", "tokens"),
    ("01 0x input output", "row 1"),
    ("011 00 000 input conv3x3 output", "row 1"),
    ("11 00 input output", r"upper triangular.*\[0\]\[0\]"),
    ("01 10 input output", r"upper triangular.*\[1\]\[0\]"),
    ("011 001 000 input conv5x5 output", "unknown operation 'conv5x5' at vertex 1"),
    ("011 001 000 conv3x3 conv3x3 output", "vertex 0 must be 'input'"),
    ("011 001 000 input conv3x3 conv3x3", "last vertex must be 'output'"),
    ("011 001 000 input output output", "interior vertex 1"),
    ("010 000 000 input conv3x3 output", "does not reach the output"),
    ("0 input", "1 vertices"),
    (" ".join(["0" * 8] * 8 + ["input"] + ["conv3x3"] * 6 + ["output"]), "8 vertices"),
    # 10 edges after pruning: every edge of a 5-vertex DAG.
    ("01111 00111 00011 00001 00000 input conv3x3 conv3x3 conv3x3 output", "10 edges"),
])
def test_bad_cells_are_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        SPACE.parse(text)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"entry \[0\]\[1\] must be 0 or 1"):
        NB101Cell(((0, 1.0), (0, 0)), ("input", "output"))
    with pytest.raises(ValueError, match=r"must be 2x2"):
        NB101Cell(((0, 1, 0), (0, 0, 0)), ("input", "output"))
    with pytest.raises(ValueError, match="sequence of labels"):
        NB101Cell(((0, 1), (0, 0)), "input output")
    with pytest.raises(ValueError, match="V\\*V \\+ V entries"):
        NB101Cell.from_naslib_tuple((0, 1, 0))
    with pytest.raises(TypeError):
        SPACE.as_arch(3)


# -- pruning ---------------------------------------------------------------------------------

def test_pruning_removes_vertices_off_every_input_output_path():
    cell = SPACE.parse(ISSUE_1)  # vertex 5 has no out-edge
    assert cell.kept_vertices == (0, 1, 2, 3, 4, 6) and not cell.is_pruned
    assert cell.num_edges == 12  # more than 9 before pruning is allowed ...
    pruned = cell.pruned  # ... 9 after, as the benchmark counts
    assert SPACE.format(pruned) == ("011111 000001 000001 000010 000001 000000 "
                                    "input maxpool3x3 maxpool3x3 conv3x3 conv3x3 output")
    assert pruned.num_edges == 9 and pruned.pruned is pruned and pruned.is_pruned
    # Vertices unreachable from the input are removed too.
    dangling = SPACE.parse("0100 0001 0001 0000 input conv3x3 conv1x1 output")
    assert dangling.kept_vertices == (0, 1, 3)
    assert SPACE.format(dangling.pruned) == "010 001 000 input conv3x3 output"


# -- the graph hash --------------------------------------------------------------------------

@pytest.mark.parametrize("expected, text, _", KNOWN)
def test_known_graph_hashes(expected, text, _):
    assert SPACE.canonical(text) == expected
    assert isomorphism.graph_hash(text) == expected


def test_graph_hash_of_isomorphic_and_pruned_forms():
    cell = SPACE.parse(ISSUE_2)
    others = _relabellings(cell)
    assert others and {SPACE.canonical(c) for c in others} == {SPACE.canonical(cell)}
    # The issue's first cell: relabellings of its original form (vertex 5 dangling) and its
    # pruned form share its hash.
    first = SPACE.parse(ISSUE_1)
    assert {SPACE.canonical(c) for c in _relabellings(first)} == {SPACE.canonical(first)}
    assert SPACE.canonical(first.pruned) == SPACE.canonical(first)
    assert SPACE.arch_hash(first.pruned) == SPACE.arch_hash(first)


def test_graph_hash_of_different_cells_differs():
    cell = SPACE.parse(ISSUE_2)
    other_op = SPACE.parse(ISSUE_2.replace("input conv3x3", "input conv1x1"))
    other_edge = SPACE.parse(ISSUE_2.replace("0110010", "0100010"))  # vertex 2 now dangles
    hashes = {SPACE.canonical(c) for c in (cell, other_op, other_edge)}
    assert len(hashes) == 3
    # Vertices 3 and 5 of this cell are pruned: an edge into them changes nothing.
    assert SPACE.canonical(ISSUE_2.replace("0110010", "0110000")) == SPACE.canonical(cell)
    known = {SPACE.canonical(text) for _, text, _ in KNOWN}
    assert len(known) == len(KNOWN)


# -- sampling --------------------------------------------------------------------------------

def test_sampling_draws_as_the_benchmark_does():
    # NASLib's test of the benchmark's sampler: np.random.seed(9001), then one cell.
    assert genotype.sample(1, seed=9001)[0].to_naslib_tuple() == SAMPLED
    cells = SPACE.sample(200, seed=1)
    assert cells == SPACE.sample(200, seed=1)
    assert all(c.num_vertices == 7 and c.pruned.num_edges <= 9 for c in cells)
    with pytest.raises(ValueError):
        SPACE.sample(0)
    with pytest.raises(TypeError):
        SPACE.sample(1, seed=1.5)


# -- the network -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [(ISSUE_1, 4_095_778), (ISSUE_2, 1_749_031)])
def test_parameter_counts_of_the_issue(text, expected):
    assert SPACE.param_count(text, SPACE.config()) == expected


def test_traced_parameter_count_equals_the_counted():
    assert cost.param_count_traced(ISSUE_2) == 1_749_031


@pytest.mark.parametrize("_, text, expected", KNOWN)
def test_parameter_counts_equal_the_benchmark(_, text, expected):
    assert cost.param_count(text) == expected


def test_vertex_channels_hand_computed():
    pruned = SPACE.parse(ISSUE_1).pruned.matrix
    # 128 split over the three vertices feeding the output (1, 2, 4): 43, 43, 42; vertex 3
    # feeds only vertex 4 and takes its 42.
    assert network.vertex_channels(64, 128, pruned) == [64, 43, 43, 42, 42, 128]
    assert network.vertex_channels(64, 128, ((0, 1), (0, 0))) == [64, 128]
    with pytest.raises(ValueError, match="cannot be split"):
        network.vertex_channels(2, 2, pruned)


def test_projection_only_cell_is_a_projection():
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    cell = network.Cell(SPACE.parse(PROJECTION_ONLY), 5)
    params = cell.init(jax.random.key(1), x)["params"]
    y = cell.apply({"params": params}, x)
    kernel = params["projection_1"]["conv"]["conv"]["kernel"][0, 0]
    z = x @ kernel
    z = (z - z.mean((0, 1, 2))) / jnp.sqrt(z.var((0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(y, jax.nn.relu(z), atol=1e-5)


def test_concatenation_truncation_and_projected_input():
    # 0 -> 1 -> 2, 1 -> out, 2 -> out, 0 -> out; 5 output channels split 3 / 2.
    cell = SPACE.parse("0101 0011 0001 0000 input maxpool3x3 maxpool3x3 output")
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    module = network.Cell(cell, 5)
    params = module.init(jax.random.key(1), x)["params"]
    y = module.apply({"params": params}, x)

    def project(name, features):
        return network.ConvBnRelu(features, 1).apply({"params": params[name]}, x)

    v1 = layers.max_pool(project("projection_1", 3), 3, 1, 1)
    v2 = layers.max_pool(v1[..., :2], 3, 1, 1)  # truncated from 3 to 2 channels
    expected = jnp.concatenate([v1, v2], axis=-1) + project("projection_3", 5)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def _sown(model, x, use_bn=True):
    """What ``model`` sows on ``x`` with all-zero parameters (values do not matter here)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    params = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, use_bn=use_bn,
                                             mutable=[contract.INTERMEDIATES])[1])
    return apply(params, x)[contract.INTERMEDIATES]


def _hooked_weights(text, stacks=1):
    """``{module path: how many reference hooks see its output}``."""
    model = network.build(text, stem_channels=4, stacks=stacks, cells_per_stack=1)
    sown = _sown(model, jnp.zeros((1, 8, 8, 3)))
    out = {}
    for path, weight in jax.tree_util.tree_flatten_with_path(sown)[0]:
        names = contract.path_names(path)
        if contract.HOOKED + contract.WEIGHT_SUFFIX in names:
            out["/".join(names[:names.index(contract.HOOKED + contract.WEIGHT_SUFFIX)])] = float(
                weight)
    return out


def test_hooked_multiplicities_follow_the_meco_reference():
    # Conv2d; BatchNorm2d; ReLU seen by itself, the conv_bn_relu Sequential and ConvBnRelu.
    stem = {"stem/conv": 1, "stem/bn": 1, "stem/relu": 3}

    def conv_bn_relu(prefix, relu):
        return {f"{prefix}/conv": 1, f"{prefix}/bn": 1, f"{prefix}/relu": relu}

    assert _hooked_weights(PROJECTION_ONLY) == {
        **stem, **conv_bn_relu("cell_0_0/projection_1", 3), "cell_0_0": 1}
    # A vertex convolution is nested one module deeper (Conv3x3BnRelu): its ReLU is seen 4
    # times; a maxpool vertex by MaxPool2d and MaxPool3x3.
    text = "0110 0001 0001 0000 input conv3x3 maxpool3x3 output"
    assert _hooked_weights(text) == {
        **stem, **conv_bn_relu("cell_0_0/projection_1", 3),
        **conv_bn_relu("cell_0_0/vertex_1", 4), **conv_bn_relu("cell_0_0/projection_2", 3),
        "cell_0_0/vertex_2": 2, "cell_0_0": 1}
    # The down-sampling max pool is seen once.
    assert _hooked_weights(PROJECTION_ONLY, stacks=2)["downsample_1"] == 1


def test_use_bn_false_removes_every_batch_norm():
    model = network.build(ISSUE_2, stem_channels=8, stacks=2, cells_per_stack=1)
    x = jnp.zeros((1, 8, 8, 3))
    with_bn, without = _sown(model, x), _sown(model, x, use_bn=False)
    # Pruned, the cell has two convolution vertices (1, 4) and two input edges (into 1, 2).
    n_convs = len(contract.values(with_bn, contract.CONV_OUT))
    assert len(contract.bn_sites(with_bn)) == n_convs == 1 + 2 * (2 + 2)
    assert contract.bn_sites(without) == []
    assert len(contract.values(without, contract.CONV_OUT)) == n_convs


def test_initialisation_is_the_references():
    model = network.build(PROJECTION_ONLY, stem_channels=64, stacks=1, cells_per_stack=1,
                          num_classes=500)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))["params"]
    stem = params["stem"]["conv"]["conv"]["kernel"]  # N(0, 2 / (3 * 3 * 64))
    assert stem.shape == (3, 3, 3, 64)
    assert abs(float(jnp.std(stem)) / math.sqrt(2 / (9 * 64)) - 1) < 0.1
    proj = params["cell_0_0"]["projection_1"]["conv"]["conv"]["kernel"]  # N(0, 2 / 64)
    assert abs(float(jnp.std(proj)) / math.sqrt(2 / 64) - 1) < 0.05
    dense = params["classifier"]["dense"]  # N(0, 0.01^2), bias 0
    assert abs(float(jnp.std(dense["kernel"])) / 0.01 - 1) < 0.05
    assert not jnp.any(dense["bias"])
    assert jnp.all(params["stem"]["bn"]["scale"] == 1) and not jnp.any(params["stem"]["bn"]["bias"])


def test_max_pool_routes_gradients_as_pytorch():
    ones = jnp.ones((1, 4, 4, 1))
    grad = jax.grad(lambda x: jnp.sum(layers.max_pool(x, 3, 1, 1)))(ones)[0, :, :, 0]
    # torch.nn.MaxPool2d(3, 1, 1) on ones: every window's gradient goes to its first maximum.
    np.testing.assert_array_equal(grad, [[4, 2, 2, 0], [2, 1, 1, 0], [2, 1, 1, 0], [0, 0, 0, 0]])
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
    for window, stride, pad in ((3, 1, 1), (2, 2, 0)):
        expected = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                                         (1, stride, stride, 1),
                                         ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        np.testing.assert_array_equal(layers.max_pool(x, window, stride, pad), expected)


def test_max_pool_gradient_in_float64_under_jit():
    def grad64(x):
        with jax.enable_x64(True):
            x = x.astype(jnp.float64)
            return jax.grad(lambda x: jnp.sum(layers.max_pool(x, 3, 1, 1) ** 2))(x)

    assert jax.jit(grad64)(jnp.ones((1, 4, 4, 2))).dtype == jnp.float64


def test_flops_count_every_convolution():
    # The projection-only cell, 1 stack of 1 cell at 8 channels on 32x32: stem 3x3 3->8,
    # projection 1x1 8->8, classifier 8->10.
    assert SPACE.flops(PROJECTION_ONLY, SPACE.config(stem_channels=8, stacks=1,
                                                     cells_per_stack=1)) == (
        32 * 32 * 9 * 3 * 8 + 32 * 32 * 8 * 8 + 8 * 10)


# -- the space -------------------------------------------------------------------------------

def test_space_settings():
    from zcjax.proxies.epsilon import EPSILON_WEIGHTS

    assert SPACE.proxy_options["epsilon"]["weights"] == EPSILON_WEIGHTS["nb101"]
    assert SPACE.proxy_options["epsilon_f64"]["weights"] == EPSILON_WEIGHTS["nb101"]
    assert "croze" in SPACE.unsupported_proxies and "croze_paper" not in SPACE.unsupported_proxies
    assert SPACE.config() == SPACE.Config(num_classes=10, stem_channels=128, stacks=3,
                                          cells_per_stack=3)
    with pytest.raises(ValueError, match="stacks"):
        SPACE.config(stacks=0)


# -- ground truth ----------------------------------------------------------------------------

def test_benchmark_rows_parse_and_lookup_by_graph_hash():
    from zcjax.benchmarks import nb101 as bench

    b = SPACE.benchmark()
    archs = b.archs()
    assert len(archs) == 500 and all(SPACE.key(a) == a for a in archs)
    assert len(set(bench.class_of())) == 292
    values = b.lookup(archs)
    assert np.isfinite(values).all() and values.min() > 0 and values.max() < 100
    # One value per graph class: isomorphic and pruned forms of a row find the same value.
    row = SPACE.parse(archs[1])
    (isomorphic, *_) = _relabellings(row)
    assert b.lookup([isomorphic, row.pruned, archs[1]]).tolist() == [values[1]] * 3
    # The projection-only cell: 55 rows holding three different runs, averaged.
    runs = bench.row_accuracy()[np.array(bench.class_of()) == SPACE.canonical(PROJECTION_ONLY)]
    assert len(runs) == 55 and sorted({round(r, 3) for r in runs}) == [83.163, 83.464, 83.584]
    assert b.lookup([PROJECTION_ONLY])[0] == pytest.approx(runs.mean())
    assert b.lookup([PROJECTION_ONLY], "val_accuracy", "CIFAR-10")[0] == pytest.approx(
        runs.mean())
    assert math.isnan(b.lookup([ISSUE_2.replace("input conv3x3", "input conv1x1")])[0])


def test_benchmark_errors():
    b = SPACE.benchmark()
    with pytest.raises(ValueError, match="row 0"):
        b.lookup(["0x 00 input output"])
    with pytest.raises(ValueError, match="test_accuracy"):
        b.lookup([PROJECTION_ONLY], "test_accuracy")
    with pytest.raises(ValueError, match="data set"):
        b.lookup([PROJECTION_ONLY], dataset="cifar100")


SHARED = pathlib.Path(os.environ.get(
    "ZCJAX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"))


@pytest.mark.skipif(not (SHARED / "nb101").is_dir(), reason="shared/data/nb101 not present")
def test_shipped_table_is_the_shared_one():
    import importlib.resources

    ours = importlib.resources.files("zcjax.resources") / "nb101_cifar10_val_accuracy.csv"
    assert ours.read_bytes() == (SHARED / "nb101" / "nb101_cifar10_val_accuracy.csv").read_bytes()

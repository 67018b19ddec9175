"""NAS-Bench-301 (the DARTS space): genotypes, network, costs, CRoZe layout, ground truth.

Reference facts checked here (see the module docs of ``zcjax.spaces.nb301`` for the sources):

- parameter counts: DARTS-V2 at C=36, 20 cells, DARTS ops, without the auxiliary head:
  3,349,342 (``quark0/darts``, its logs' "param size = 3.349342MB"); DARTS-V1: 3,169,414; the
  first three cells of the benchmark table at NAS-Bench-301's C=32, 8 cells, NASLib ops:
  856,298 / 673,834 / 885,674, as NASLib's ``NasBench301SearchSpace`` (``zerocost`` branch)
  counts them (both counted by running the PyTorch references);
- logits: zcjax's networks given the weights of the PyTorch references compute the same logits
  (``test_logits_equal_the_pytorch_references``, values recorded from the references);
- CRoZe's layer-to-feature map: a replay of ``get_layer_metric_array_adv_feats``.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import importlib.resources
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import contract, spaces
from zcjax.benchmarks import nb301 as bench
from zcjax.proxies import flops as flops_proxy
from zcjax.spaces import layers, nb301
from zcjax.spaces.nb301 import cost, genotype as G, network, ops

# XLA's heavier optimisations off: these tests compile many programs for tiny networks.
pytestmark = pytest.mark.usefixtures("fast_compiles")

SPACE = spaces.get("nb301")

SHARED = pathlib.Path(os.environ.get(
    "ZCJAX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"))

#: ``str(DARTS_V2)`` in ``quark0/darts`` (``cnn/genotypes.py``), the namedtuple's own repr.
DARTS_V2_STRING = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")

#: Row 0 of the benchmark table, in NASLib's encoding.
ROW0 = ("[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], "
        "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]")
ROW0_ACCURACY = 93.32119084207302


def table_rows():
    path = importlib.resources.files("zcjax.resources") / "nb301_benchmark.csv"
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def row_genotype(i: int) -> G.DartsGenotype:
    return G.DartsGenotype.from_naslib(ast.literal_eval(table_rows()[i]["naslib_genotype"]))


def traced_params(model) -> int:
    shapes = jax.eval_shape(lambda k: network.init(model, k), jax.random.key(0))
    return layers.parameter_count(shapes["params"])


# -- genotypes -------------------------------------------------------------------------------

def test_darts_notation_round_trips():
    assert str(G.DARTS_V2) == DARTS_V2_STRING
    assert G.DartsGenotype.from_string(DARTS_V2_STRING) == G.DARTS_V2
    for g in G.sample(20, seed=1) + [G.DARTS_V1]:
        assert SPACE.parse(SPACE.format(g)) == g
        assert G.DartsGenotype.from_naslib(g.to_naslib()) == g
        assert G.DartsGenotype.from_naslib(np.array(g.to_naslib())) == g
        assert hash(g) == hash(SPACE.parse(str(g)))


def test_parser_reads_what_darts_and_naslib_print():
    # DARTS's search logs print the concat as a range; quotes, brackets, spacing vary.
    variant = (DARTS_V2_STRING.replace("[2, 3, 4, 5]", "range(2, 6)").replace("'", '"')
               .replace(", ", ",  "))
    assert SPACE.parse("  " + variant + "\n") == G.DARTS_V2
    no_concat = DARTS_V2_STRING.replace(", normal_concat=[2, 3, 4, 5]", "").replace(
        ", reduce_concat=[2, 3, 4, 5]", "")
    assert SPACE.parse(no_concat) == G.DARTS_V2
    tuples = G.DARTS_V2.to_string().replace("[", "(").replace("]", ")")
    assert SPACE.parse(tuples) == G.DARTS_V2
    # NASLib's integer encoding, as in the benchmark table and in zc_nasbench301.json.
    g = SPACE.parse(ROW0)
    assert g.normal[:2] == (("max_pool_3x3", 0), ("dil_conv_3x3", 1))
    assert g.reduce[-1] == ("dil_conv_5x5", 3)
    assert g.to_naslib() == ast.literal_eval(ROW0.replace("[", "(").replace("]", ")"))


def _with_pair(cell: str, pair: int, value: tuple) -> str:
    """DARTS-V2's string with one pair of one cell replaced by ``value`` (any tuple)."""
    pairs = list(getattr(G.DARTS_V2, cell))
    old = "[" + ", ".join(repr(p) for p in pairs) + "]"
    pairs[pair] = value
    return DARTS_V2_STRING.replace(old, "[" + ", ".join(repr(p) for p in pairs) + "]")


@pytest.mark.parametrize("text, message", [
    (_with_pair("normal", 2, ("sep_conv_3x3", 3)), "node 3 cannot take input from node 3"),
    (_with_pair("reduce", 7, ("max_pool_3x3", 6)), "node 5 cannot take input from node 6"),
    (_with_pair("normal", 0, ("conv_7x1_1x7", 0)), "unknown operation 'conv_7x1_1x7'"),
    (_with_pair("normal", 0, ("none", 0)), "has no 'none'"),
    (_with_pair("normal", 1, ("sep_conv_3x3", 0)), "node 2 takes node 0 twice"),
    (_with_pair("normal", 1, ("sep_conv_3x3", -1)), "cannot take input from node -1"),
    (_with_pair("normal", 1, ("sep_conv_3x3", True)), "must be an integer, got a bool"),
    (_with_pair("normal", 1, ("sep_conv_3x3", 1.0)), "must be an integer"),
    (_with_pair("normal", 1, ("sep_conv_3x3",)), "expected an (op, input) pair"),
    (DARTS_V2_STRING.replace("('dil_conv_3x3', 2)]", "('dil_conv_3x3', 2), ('skip_connect', 0)]"),
     "expected 8 (op, input) pairs"),
    (DARTS_V2_STRING.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"),
     "normal_concat must be the nodes [2, 3, 4, 5]"),
    (DARTS_V2_STRING.replace("reduce_concat", "reduction_concat"), "unknown Genotype fields"),
    (DARTS_V2_STRING.replace("Genotype(", "Genome("), "expected Genotype"),
    ("Genotype(normal=x, reduce=y)", "is not a literal list of pairs"),
    ("Genotype([], [])", "must be given by name"),
    ("Genotype(normal=[])", "the reduce cell is missing"),
    ("[[(0, 7)] * 8, [(0, 0)] * 8]", "not a literal"),
    (ROW0.replace("(3, 6)]]", "(3, 7)]]"), "op index must be in 0..6"),
    (ROW0.replace("(0, 0), (1, 5)", "(0, 0), (0, 5)"), "node 2 takes node 0 twice"),
    ("[[(0, 0)], [(0, 0)]]", "expected 8 (op, input) pairs"),
    ("Genotype(normal=" + "[" * 5000 + ")", "longer than 4096 characters"),
    ("1 +", "not a DARTS genotype"),
])
def test_bad_genotypes_are_a_clear_error(text, message):
    with pytest.raises(ValueError) as info:
        SPACE.parse(text)
    assert message in str(info.value)
    assert len(str(info.value)) < 1000


def test_constructor_validates_and_freezes():
    with pytest.raises(ValueError, match="expected 8"):
        G.DartsGenotype(G.DARTS_V2.normal[:6], G.DARTS_V2.reduce)
    g = G.DartsGenotype([list(p) for p in G.DARTS_V2.normal], list(G.DARTS_V2.reduce))
    assert g == G.DARTS_V2 and isinstance(g.normal, tuple)
    with pytest.raises(AttributeError):
        g.normal = G.DARTS_V2.reduce  # type: ignore[misc]
    with pytest.raises(TypeError):
        SPACE.as_arch(3)


def test_canonical_form_identifies_the_order_of_a_nodes_two_pairs_only():
    g = G.DARTS_V2
    swapped = G.DartsGenotype(g.normal[1::-1] + g.normal[2:], g.reduce[:6] + g.reduce[:5:-1])
    assert swapped != g
    assert SPACE.canonical(swapped) == SPACE.canonical(g)
    assert SPACE.arch_hash(swapped) == SPACE.arch_hash(g)
    assert g.canonical().canonical() == g.canonical()
    # sorted by (input, op index) within each node
    for cell in g.canonical().cells:
        for k in range(4):
            a, b = cell[2 * k], cell[2 * k + 1]
            assert (a[1], G.OPS.index(a[0])) <= (b[1], G.OPS.index(b[0]))
    # relabelling intermediate nodes is not identified: swap nodes 2 and 3 of a cell whose
    # node 3 does not read node 2 (the concatenated output's channels move)
    normal = (("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("dil_conv_5x5", 1),
              ("sep_conv_5x5", 2), ("sep_conv_5x5", 3), ("avg_pool_3x3", 4), ("skip_connect", 0))
    relabelled = normal[2:4] + normal[0:2] + (("sep_conv_5x5", 3), ("sep_conv_5x5", 2)) + normal[6:]
    a, b = G.DartsGenotype(normal, g.reduce), G.DartsGenotype(relabelled, g.reduce)
    assert SPACE.canonical(a) != SPACE.canonical(b)


def test_sampling_follows_nb301():
    archs = SPACE.sample(300, seed=7)
    assert archs == SPACE.sample(300, seed=7) and archs != SPACE.sample(300, seed=8)
    assert len({a.canonical() for a in archs}) == 300
    ops_seen, pairs_of_node5 = set(), set()
    for a in archs:
        for cell in a.cells:
            assert {cell[0][1], cell[1][1]} == {0, 1}  # node 2 reads both cell inputs
            ops_seen.update(op for op, _ in cell)
            pairs_of_node5.add(tuple(sorted((cell[6][1], cell[7][1]))))
    assert ops_seen == set(G.OPS)
    assert len(pairs_of_node5) == 10  # every pair i < j of nodes 0..4
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError):
            SPACE.sample(bad)


# -- the network -----------------------------------------------------------------------------

def test_param_counts_of_known_cells():
    # DARTS-V2 / V1 at the DARTS paper's CIFAR-10 size, DARTS ops, no auxiliary head.
    v2 = dict(channels=36, layers=20, convention="darts")
    assert cost.param_count(G.DARTS_V2, **v2) == 3_349_342
    assert cost.param_count(G.DARTS_V1, **v2) == 3_169_414
    assert traced_params(network.build(G.DARTS_V2, **v2)) == 3_349_342
    # NAS-Bench-301 cells at the benchmark network (C=32, 8 cells, NASLib ops), as NASLib counts.
    assert [SPACE.param_count(row_genotype(i), SPACE.config()) for i in range(3)] == \
        [856_298, 673_834, 885_674]
    assert traced_params(SPACE.build(row_genotype(0), SPACE.config())) == 856_298


@pytest.mark.parametrize("convention", ["naslib", "darts"])
def test_cost_in_closed_form_equals_the_traced_network(convention):
    for layers_, archs in ((3, G.sample(3, seed=2)), (5, [G.DARTS_V2, row_genotype(1)])):
        for g in archs:
            model = network.build(g, channels=4, layers=layers_, convention=convention)
            shapes = jax.eval_shape(lambda k: network.init(model, k), jax.random.key(0))
            assert cost.param_count(g, channels=4, layers=layers_, convention=convention) == \
                layers.parameter_count(shapes["params"])
            assert cost.flops(g, channels=4, layers=layers_) == \
                flops_proxy.forward_macs(model.apply, shapes, (32, 32, 3))


def test_conventions_differ_where_documented():
    g = G.DARTS_V2
    darts = cost.param_count(g, convention="darts")
    naslib = cost.param_count(g, convention="naslib")
    # NASLib's op batch norms have no scale and shift: 2 C_i fewer parameters per BN of a
    # SepConv (it has 2), a DilConv (1) or a stride-2 skip (1); pools' BNs have none either way.
    expected = 0
    for shape in cost.cell_shapes(32, 8):
        for op, source in (g.reduce if shape.reduction else g.normal):
            stride2_skip = op == "skip_connect" and shape.reduction and source < 2
            n_bn = 2 if op.startswith("sep") else 1 if op.startswith("dil") or stride2_skip else 0
            expected += n_bn * 2 * shape.c
    assert darts - naslib == expected > 0
    with pytest.raises(ValueError, match="unknown DARTS op convention"):
        ops.get_convention("official")


def test_network_structure_and_batch_norm_removal():
    config = SPACE.tiny_config()
    model = SPACE.build(G.DARTS_V2, config)
    variables = reference_params(model)
    images = jnp.ones((2, 32, 32, 3))
    logits, state = model.apply(variables, images, mutable=[contract.INTERMEDIATES])
    assert logits.shape == (2, 10)
    sown = state[contract.INTERMEDIATES]
    assert [w for w, _, _ in network.cell_widths(4, 3)] == [4, 8, 16]
    features, layout = contract.stage_layout(sown)
    assert [f.shape for f in features] == [(2, 32, 32, 12), (2, 32, 32, 16), (2, 16, 16, 32),
                                           (2, 8, 8, 64), (2, 64)]
    (pre_pool,) = contract.values(sown, contract.PRE_POOL)
    np.testing.assert_array_equal(pre_pool, features[-2])
    # use_bn=False: every batch norm goes (NASLib's / CRoZe's copynet(bn=False)).
    _, state = model.apply(variables, images, use_bn=False, mutable=[contract.INTERMEDIATES])
    assert contract.bn_sites(state[contract.INTERMEDIATES]) == []
    n_bn = len(contract.bn_sites(sown))
    # the stem; 2 preprocessings per cell; DARTS-V2's normal cell (cell 0): 5 sep convs (2 BN
    # each) and a dil conv; its reduction cell (cells 1, 2): 5 max pools (a BN each in NASLib's
    # convention), its skips read node 2 (stride 1, no BN).
    assert n_bn == 1 + 3 * 2 + (5 * 2 + 1) + 2 * 5


def test_hooks_follow_mecos_darts_model():
    model = SPACE.build(G.DARTS_V2, SPACE.tiny_config())
    variables = reference_params(model)
    _, state = model.apply(variables, jnp.ones((1, 32, 32, 3)), mutable=[contract.INTERMEDIATES])
    sown = state[contract.INTERMEDIATES]

    def weights(*path):
        node = sown
        for key in path:
            node = node[key]
        return [float(w) for _, w in contract.sites(node, contract.HOOKED)]

    assert weights("stem_bn") == [2.0]  # BatchNorm2d + the stem's nn.Sequential
    # sep conv: (ReLU, depthwise, pointwise, BN) twice; the last BN ends the block
    assert weights("cell_0", "op_0") == [1, 1, 1, 1, 1, 1, 1, 3]
    assert weights("cell_0", "op_7") == [1, 1, 1, 3]  # dil conv: ReLU, dw, pw, BN
    assert weights("cell_0", "op_5") == [1]  # identity
    assert weights("cell_1", "op_0") == [1, 3]  # max pool, its BN (NASLib's nesting)
    assert weights("cell_2", "preprocess0") == [1, 1, 1, 2]  # FactorizedReduce
    assert weights("cell_2", "preprocess1") == [1, 1, 3]  # ReLUConvBN
    # the Cell module's own hook sees the concatenated output
    assert [float(w) for w in sown["cell_0"][contract.HOOKED + contract.WEIGHT_SUFFIX]] == [1.0]
    assert sown["cell_0"][contract.HOOKED][0].shape == (1, 32, 32, 16)


def test_stage_layout_follows_the_reference_loop():
    """Replay CRoZe's ``get_layer_metric_array_adv_feats`` (``search_space == 'darts'``) over the
    module order of its ``NetworkCIFAR``: stem, the cells (``layer_cnt += 1`` on entering
    each), the classifier; a layer is compared on feature ``layer_cnt`` (+1 for the Linear)."""
    for num_layers in (3, 8):
        model = network.build(G.DARTS_V2, channels=4, layers=num_layers)
        shapes = jax.eval_shape(lambda k: network.init(model, k), jax.random.key(0))
        layout = {tuple(k.split("/")): v for k, v in network.stage_layout(num_layers).items()}
        weights = [path for path, _ in jax.tree_util.tree_flatten_with_path(shapes["params"])[0]
                   if contract.is_layer_weight(path)]
        order = ["stem_conv"] + [f"cell_{i}" for i in range(num_layers)] + ["classifier"]
        layer_cnt, checked = 0, 0
        for block in order:
            if block.startswith("cell_"):
                layer_cnt += 1
            expected = layer_cnt + (1 if block == "classifier" else 0)
            for path in weights:
                if contract.path_names(path)[0] == block:
                    assert contract.stage_of(layout, path) == expected, (block, path)
                    checked += 1
        assert checked == len(weights)
        assert max(layout.values()) == num_layers + 1  # L + 2 features


def reference_params(model, seed: int = 0):
    """Weights drawn with NumPy for the network's parameter shapes (no JAX init to compile):
    kernels ``N(0, 1 / fan_in)``, batch-norm scales ``1 + N(0, 0.01)``, biases ``N(0, 0.01)``,
    drawn leaf by leaf in the pytree's flattening order."""
    shapes = jax.eval_shape(lambda k: network.init(model, k), jax.random.key(0))["params"]
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = contract.path_names(path)[-1]
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            return rng.standard_normal(leaf.shape).astype(np.float32) / np.sqrt(fan_in)
        base = 1.0 if name == "scale" else 0.0
        return (base + 0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)

    return {"params": jax.tree_util.tree_map_with_path(draw, shapes)}


#: Logits of the PyTorch references given :func:`reference_params` (seed 0), for the first two
#: images of ``zcjax.data.default_batch(2, seed=0)``, in training mode, with batch norm and as
#: ``copynet(bn=False)`` leaves the network. Recorded by loading those weights into the
#: references (every parameter mapped one to one, none left over):
#: ``naslib`` -- NASLib's ``NasBench301SearchSpace`` (``zerocost`` branch) for table row 0, its
#: width patched from ``[32, 64, 128]`` to ``[4, 8, 16]`` (8 cells, as NASLib fixes them);
#: ``darts`` -- ``quark0/darts`` ``NetworkCIFAR(4, 10, 3, False, DARTS_V2)``.
#: At the benchmark width (C=32, 8 cells, table rows 0, 1 and 5) zcjax matched NASLib to 7.6e-6
#: relative, and ``NetworkCIFAR`` at C=4 / 5 cells and C=6 / 7 cells to 1.6e-6.
REFERENCE_LOGITS = {
    "naslib": (
        [  # with batch norm
            [0.20938548, -0.55289185, 0.18544114, -0.7382624, 0.34540844, 0.35434574,
             -0.40722206, -0.7794131, 0.49190596, 0.5543647],
            [0.001902841, 0.63627684, -0.25387824, 0.71403456, -0.5719377, 0.1188966, 0.42769036,
             0.5525192, -0.39097744, -0.480873],
        ],
        [  # copynet(bn=False)
            [-0.39435992, 0.113571644, 0.7634965, 0.28830034, -0.3186674, 0.52737963,
             -0.11684683, -0.44782782, -0.40275288, 0.36990702],
            [-0.1563896, 0.19497998, 0.4540764, 0.11921999, -0.32104522, 0.47509855, 0.007538642,
             -0.11296782, -0.14613882, 0.14171702],
        ],
    ),
    "darts": (
        [  # with batch norm
            [-2.295329, -1.1100831, -0.5102843, -2.9012728, -1.7874808, 2.6464417, -4.4662724,
             -0.38882393, -0.994372, 1.2025893],
            [-1.9599162, 0.0378562, -1.7093936, -3.337805, -1.414798, 1.7310693, -5.126334,
             -1.7102169, -1.5116578, 0.41542774],
        ],
        [  # copynet(bn=False)
            [-0.9287685, 0.51310337, -0.8126441, -1.5942657, -0.11933675, 0.8812808, -1.9672838,
             -1.0741003, -1.6185812, 0.12889923],
            [-1.0851332, 1.031499, -1.6014746, -1.9303005, -0.17374769, 0.6153146, -2.8294423,
             -1.7762499, -1.6257137, 0.21787065],
        ],
    ),
}

REFERENCE_CASES = {
    "naslib": (ROW0, dict(channels=4, layers=8, convention="naslib")),
    "darts": (DARTS_V2_STRING, dict(channels=4, layers=3, convention="darts")),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_logits_equal_the_pytorch_references(case):
    from zcjax.data import default_batch

    arch, settings = REFERENCE_CASES[case]
    model = network.build(arch, **settings)
    variables = reference_params(model)
    images = default_batch(2, seed=0).images
    for use_bn, expected in zip((True, False), REFERENCE_LOGITS[case]):
        logits = model.apply(variables, images, use_bn=use_bn)
        np.testing.assert_allclose(logits, np.array(expected, np.float32), rtol=2e-5,
                                   atol=2e-5 * float(np.abs(expected).max()))


# -- the protocol and the ground truth -------------------------------------------------------

def test_config_and_tiny_config():
    assert SPACE.config() == nb301.NB301Config(channels=32, layers=8, convention="naslib")
    tiny = SPACE.tiny_config()
    kinds = [r for _, r, _ in network.cell_widths(tiny.channels, tiny.layers)]
    assert kinds == [False, True, True]  # both cell types, and a cell after a reduction
    for bad in (dict(channels=0), dict(layers=-1), dict(num_classes=True),
                dict(convention="zero_cost")):
        with pytest.raises(ValueError):
            SPACE.config(**bad)
    from zcjax.proxies.epsilon import EPSILON_WEIGHTS

    # NAS-Bench-101's pair (see space.EPSILON_WEIGHTS for why), stated in the space.
    assert SPACE.proxy_options["epsilon"]["weights"] == EPSILON_WEIGHTS["nb101"]
    assert SPACE.proxy_options["epsilon_f64"]["weights"] == EPSILON_WEIGHTS["nb101"]


def test_benchmark_table_parses_and_has_no_duplicates():
    rows = table_rows()
    assert len(rows) == 725
    genotypes = bench.genotypes()
    assert len({g.canonical() for g in genotypes}) == 725
    acc = bench.val_accuracy()
    assert acc.shape == (725,) and acc[0] == ROW0_ACCURACY
    assert (acc.min(), acc.max()) == (acc[37], acc[108])
    np.testing.assert_allclose([acc.min(), acc.max()], [91.2366, 94.4889], atol=1e-4)


def test_benchmark_lookup_by_any_spelling():
    b = SPACE.benchmark()
    assert b.space == "nb301" and b.metrics == ("val_accuracy",) and b.datasets == ("cifar10",)
    archs = b.archs()
    assert len(archs) == 725 and archs[0] == SPACE.format(SPACE.parse(ROW0))
    g = SPACE.parse(ROW0)
    swapped = G.DartsGenotype(g.normal[1::-1] + g.normal[2:], g.reduce)
    values = b.lookup([archs[0], ROW0, swapped, SPACE.format(swapped), G.DARTS_V2], "val_accuracy",
                      "CIFAR-10")
    np.testing.assert_array_equal(values[:4], [ROW0_ACCURACY] * 4)
    assert np.isnan(values[4])  # DARTS-V2 is not in the table
    np.testing.assert_array_equal(b.lookup(archs), bench.val_accuracy())
    with pytest.raises(ValueError):
        b.lookup(["not an architecture"])
    with pytest.raises(ValueError, match="no data set"):
        b.lookup(archs[:1], dataset="cifar100")
    with pytest.raises(ValueError, match="has no"):
        b.lookup(archs[:1], metric="test_accuracy")


@pytest.mark.skipif(not (SHARED / "nb301" / "nb301_cifar10_val_accuracy.csv").is_file(),
                    reason="shared/data/nb301 not present")
def test_shipped_table_is_the_shared_one():
    shipped = importlib.resources.files("zcjax.resources") / "nb301_benchmark.csv"
    assert shipped.read_bytes() == (SHARED / "nb301" / "nb301_cifar10_val_accuracy.csv").read_bytes()


def test_synflow_compiles_and_equals_eager():
    """SynFlow's float64 pass under jit: max pooling is written so its gradient lowers in
    float64 (``flax.linen.max_pool``'s did not: a float32 / float64 padding mismatch), and
    gradients of tied maxima go to the first, as PyTorch's do (SynFlow feeds a constant image)."""
    from zcjax import score

    config = SPACE.tiny_config()
    model = SPACE.build(G.DARTS_V1, config)  # its reduction cell is max pools and skips
    batch = SPACE.example_batch(config, size=2)
    jitted = score(model, batch, ["synflow"], seeds=[0], jit=True).scores["synflow"]
    eager = score(model, batch, ["synflow"], seeds=[0], jit=False).scores["synflow"]
    assert np.isfinite(jitted).all()
    np.testing.assert_allclose(jitted, eager, rtol=1e-5)


@pytest.mark.parametrize("convention", ["naslib", "darts"])
def test_batch_summed_jacobian_vanishes_where_declared_uninformative(convention):
    """What jacob_cov and epe_nas differentiate, the logits summed over the batch, does not
    depend on the input in NASLib's network (``NB301Space.uninformative_proxies`` says why):
    its input gradient is float32 rounding, orders of magnitude below one sample's. DARTS's own
    ops (bare pools, which do not keep a channel's batch sum at zero) give a true gradient on
    the same cell (seed 0's cells have pools), and the space does not declare them there."""
    config = dataclasses.replace(SPACE.tiny_config(), convention=convention)
    model = SPACE.build(SPACE.sample(1, seed=0)[0], config)
    batch = SPACE.example_batch(config, size=8)
    variables = model.init(jax.random.key(0), batch.inputs[:1])

    @jax.jit
    def input_gradients(x):
        return (jax.grad(lambda x: model.apply(variables, x).sum())(x),
                jax.grad(lambda x: model.apply(variables, x)[0].sum())(x))

    summed, one_sample = (float(np.abs(np.asarray(g)).max())
                          for g in input_gradients(batch.inputs))
    assert one_sample > 1e-4
    declared = set(SPACE.uninformative_proxies(config))
    if convention == "naslib":
        assert declared == {"jacob_cov", "epe_nas"}
        assert summed < 1e-4 * one_sample, (summed, one_sample)
    else:
        assert not declared
        assert summed > 1e-2 * one_sample, (summed, one_sample)

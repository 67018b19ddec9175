"""NDS ResNet / ResNeXt-A: genotypes, networks checked against pycls facts, costs, the file reader.

Reference numbers and where they come from:

* ``params`` / ``flops`` of two CIFAR records of the published files, as printed by NNI's NDS
  tutorial (``microsoft/nni``, ``docs/source/tutorials/nasbench_as_dataset.rst``);
* pycls's ResNet-56 (``configs/cifar/anynet/R-56_nds_1gpu.yaml``): 855,770 parameters, the 0.856 M
  bound of the NDS notebooks; 125,747,840 multiply-accumulates;
* parameter counts, multiply-accumulates (pycls's ``flops_count``) and forward-hook firings of
  five small networks, and the MeCo score of one, computed with PyTorch 2.13 on pycls's own
  ``AnyNet`` (``facebookresearch/pycls`` at its initial commit, with the CIFAR stem's undefined
  ``stride`` set to 1 as pycls later fixed it) carrying the weights zcjax initialised; its
  logits (training mode) matched zcjax's to 5e-8 on all five.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import contract, data, proxies, spaces
from zcjax.benchmarks.nds import NDSBenchmark, NDSResNetBenchmark, NDSResNeXtABenchmark
from zcjax.spaces.nds import (RESNET, RESNEXT_A, NDSArch, build, cost, flops, init, network,
                              param_count, param_count_traced)

# XLA's heavier optimisations off: these tests compile many programs for tiny networks.
pytestmark = pytest.mark.usefixtures("fast_compiles")

R56 = NDSArch("ResNet", (9, 9, 9), (16, 32, 64))
#: The two CIFAR records NNI's tutorial prints: (net, params, flops, final / best test acc).
NNI_RESNET = ({"block_type": "res_basic_block", "ds": [1, 12, 12, 12], "ss": [1, 1, 2, 2],
               "ws": [16, 24, 24, 40], "bot_muls": [], "num_gs": []},
              594_138, 184_519_578, 93.49, 93.58)
NNI_RESNEXT = ({"block_type": "res_bottleneck_block", "bot_muls": [0.0, 0.25, 0.25, 0.25],
                "ds": [1, 16, 1, 4], "num_gs": [1, 2, 1, 2], "ss": [1, 1, 2, 2],
                "ws": [16, 64, 128, 16]},
               83_002, 69_890_986, 90.39, 90.48)


def _space(design):
    return spaces.get("nds_resnet" if design == "ResNet" else "nds_resnext_a")


def _zero_params(model):
    """Parameters of the right shapes, all zero: for structural checks, without drawing any
    random numbers (which compiles a kernel per shape, the slow part of an init on CPU)."""
    shapes = jax.eval_shape(lambda key: init(model, key), jax.random.key(0))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


# -- genotypes ---------------------------------------------------------------------------------

def test_the_string_form():
    assert R56.to_string() == "ResNet:stem=16;d=9,9,9;w=16,32,64"
    arch = NDSArch.from_record(NNI_RESNEXT[0], "ResNeXt-A")
    assert arch.to_string() == "ResNeXt-A:stem=16;d=16,1,4;w=64,128,16;bm=0.25,0.25,0.25;g=2,1,2"
    assert arch.block_type == "res_bottleneck_block" and R56.block_type == "res_basic_block"
    assert arch.bottleneck_widths == (16, 32, 4)
    # Fields in any order; the key is the written form.
    text = "ResNeXt-A:g=2,1,2;bm=0.25,0.25,0.25;w=64,128,16;d=16,1,4;stem=16"
    assert NDSArch.from_string(text) == arch
    assert _space("ResNeXt-A").key(text) == arch.to_string()
    assert hash(arch) == hash(NDSArch.from_string(arch.to_string()))


@pytest.mark.parametrize("design", [RESNET, RESNEXT_A])
def test_strings_and_records_round_trip(design):
    for arch in design.sample(50, seed=4):
        assert NDSArch.from_string(arch.to_string()) == arch
        assert NDSArch.from_record(arch.to_record(), design) == arch
        assert json.loads(json.dumps(arch.to_record())) == arch.to_record()


def test_multipliers_round_trip_without_an_exponent():
    arch = NDSArch("ResNeXt-A", (1, 1, 1), (8192, 16, 16), (7e-05, 0.5, 1.0), (1, 2, 4))
    assert "bm=0.00007,0.5,1.0" in arch.to_string()
    assert NDSArch.from_string(arch.to_string()) == arch


@pytest.mark.parametrize("text, message", [
    ("ResNet:stem=16;d=1,2;w=16,32,64", "expected 3 stages of depths, got 2"),
    ("ResNet:stem=16;d=1,2,3,4;w=16,32,64", "expected 3 stages of depths, got 4"),
    ("ResNet:stem=16;d=1,2,0;w=16,32,64", "depth of stage 3 must be in 1..256, got 0"),
    ("ResNet:stem=16;d=1,2,3;w=16,-32,64", "width '-32' is not an integer"),
    ("ResNet:stem=16;d=1,2,3;w=16,0,64", "width of stage 2 must be in 1..8192"),
    ("ResNet:stem=0;d=1,2,3;w=16,32,64", "stem width must be in 1..8192"),
    ("ResNet:stem=16;d=1,2,3;w=16,32.5,64", "width '32.5' is not an integer"),
    ("ResNet:stem=16;d=01,2,3;w=16,32,64", "depth '01' is not an integer in plain decimal"),
    ("ResNet:stem=16;d=1,2,3;w=16,32,64;bm=1,1,1;g=1,1,1", "unknown field 'bm' for ResNet"),
    ("ResNet:stem=16;d=1,2,3", "missing field(s) w"),
    ("ResNet:stem=16;d=1,2,3;d=1,2,3;w=16,32,64", "field 'd' given twice"),
    ("ResNet:stem=16;d=1,2,3;w", "field 'w' is not 'key=values'"),
    ("ResNet:stem=16;d=1,2,3;w=16,32,64;", "field '' is not 'key=values'"),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;bm=0.25,0.25,0.25;g=8,1,1",
     "stage 1: 8 groups do not divide the bottleneck width 4 = round(16 * 0.25)"),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;bm=0.25,0.25,0.01;g=1,1,1",
     "stage 3: bottleneck width round(16 * 0.01) = 0 has no channels"),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;bm=0.25,0,1;g=1,1,1",
     "bottleneck multiplier of stage 2 must be a positive number"),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;bm=1e-1,1,1;g=1,1,1", "is not a decimal number"),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;g=1,1,1", "missing field(s) bm"),
    ("ResNeXt-B:stem=16;d=1,1,1;w=16,16,16", "unknown NDS design space 'ResNeXt-B'"),
    ("d=1,1,1;w=16,16,16", "expected '<design space>:"),
    ("ResNet:stem=16;d=999,1,1;w=16,16,16", "depth of stage 1 must be in 1..256"),
])
def test_bad_strings_name_what_is_wrong(text, message):
    with pytest.raises(ValueError) as info:
        NDSArch.from_string(text)
    assert message in str(info.value)


def test_bad_genotypes_name_what_is_wrong():
    with pytest.raises(ValueError, match="must be an integer, got a bool"):
        NDSArch("ResNet", (True, 1, 1), (16, 16, 16))
    with pytest.raises(ValueError, match="must be an integer, got float"):
        NDSArch("ResNet", (1, 1, 1), (16, 16.0, 16))
    with pytest.raises(ValueError, match="ResNet has basic blocks"):
        NDSArch("ResNet", (1, 1, 1), (16, 16, 16), (1.0, 1.0, 1.0), (1, 1, 1))
    with pytest.raises(ValueError, match="expected 3 stages of groups"):
        NDSArch("ResNeXt-A", (1, 1, 1), (16, 16, 16), (1.0, 1.0, 1.0), ())
    with pytest.raises(ValueError, match="sequence of 3 values"):
        NDSArch("ResNet", "1,1,1", (16, 16, 16))


def test_a_space_refuses_the_other_design_space():
    resnext = RESNEXT_A.sample(1)[0]
    with pytest.raises(ValueError, match="is a ResNeXt-A architecture, not ResNet"):
        spaces.get("nds_resnet").parse(resnext.to_string())
    with pytest.raises(ValueError, match="is a ResNeXt-A architecture, not ResNet"):
        spaces.get("nds_resnet").param_count(resnext, spaces.get("nds_resnet").config())


def test_canonical_form_merges_only_multipliers_with_one_bottleneck_width():
    a = NDSArch.from_string("ResNeXt-A:stem=16;d=1,2,1;w=16,32,64;bm=0.25,0.5,1.0;g=1,2,4")
    same = NDSArch.from_string("ResNeXt-A:stem=16;d=1,2,1;w=16,32,64;bm=0.26,0.5,1.0;g=1,2,4")
    other = NDSArch.from_string("ResNeXt-A:stem=16;d=1,2,1;w=16,32,64;bm=0.25,0.5,1.0;g=1,2,2")
    space = spaces.get("nds_resnext_a")
    assert a != same and space.canonical(a) == space.canonical(same)
    assert space.arch_hash(a) == space.arch_hash(same) != space.arch_hash(other)
    assert param_count(a) == param_count(same)
    assert space.canonical(a) == "ResNeXt-A:stem=16;d=1,2,1;w=16,32,64;wb=4,16,64;g=1,2,4"
    # On the grid no two multipliers give one bottleneck width: every architecture is its class.
    pairs = {(w, bm) for w in RESNEXT_A.widths for bm in RESNEXT_A.bot_muls}
    assert len({(w, round(w * bm)) for w, bm in pairs}) == len(pairs)
    assert spaces.get("nds_resnet").canonical(R56) == R56.to_string()


@pytest.mark.parametrize("design, size", [(RESNET, 1_259_712), (RESNEXT_A, 11_390_625)])
def test_sampling_draws_the_paper_grid(design, size):
    assert design.size == size
    archs = design.sample(400, seed=7)
    assert archs == design.sample(400, seed=7) and archs[:10] == design.sample(10, seed=7)
    assert len(set(archs)) == 400 and archs != design.sample(400, seed=8)
    for arch in archs:
        design.check_member(arch)
    seen = {d for a in archs for d in a.depths}, {w for a in archs for w in a.widths}
    assert seen == (set(design.depths), set(design.widths))
    if design.bottleneck:
        assert {b for a in archs for b in a.bot_muls} == set(design.bot_muls)
        assert {g for a in archs for g in a.num_groups} == set(design.num_groups)
    with pytest.raises(ValueError, match="n must be in 1.."):
        design.sample(0)


def test_design_space_membership_names_the_value_outside():
    assert RESNET.contains(NDSArch.from_record(NNI_RESNET[0], "ResNet"))
    assert not RESNET.contains(R56)  # d = 9 is not on the NDS grid
    with pytest.raises(ValueError, match="depth 9 of stage 1 is outside the ResNet design space"):
        RESNET.check_member(R56)
    resnext_b = NDSArch("ResNeXt-A", (1, 1, 1), (64, 1024, 64), (1.0, 1.0, 1.0), (16, 1, 1))
    with pytest.raises(ValueError, match="width 1024 of stage 2 is outside"):
        RESNEXT_A.check_member(resnext_b)


# -- networks and their cost -------------------------------------------------------------------

def test_published_parameter_counts_and_flops():
    assert param_count(R56) == 855_770 and flops(R56) == 125_747_840
    for (net, params, record_flops, _, _), design in ((NNI_RESNET, "ResNet"),
                                                      (NNI_RESNEXT, "ResNeXt-A")):
        arch = NDSArch.from_record(net, design)
        assert param_count(arch) == params
        assert cost.record_flops(arch) == record_flops
    space = spaces.get("nds_resnet")
    assert space.param_count(R56, space.config()) == 855_770
    assert space.flops(R56, space.config()) == 125_747_840


#: Computed with PyTorch on pycls's AnyNet (module doc): parameters, multiply-accumulates
#: (``flops_count``), forward-hook firings of a forward pass (the model and its head included).
PYCLS = [
    ("ResNet:stem=16;d=2,1,3;w=16,24,40", 101_546, 17_412_496, 63),
    ("ResNet:stem=16;d=1,2,1;w=24,24,16", 37_594, 15_532_192, 49),
    ("ResNeXt-A:stem=16;d=2,1,2;w=32,64,16;bm=0.5,0.25,1.0;g=2,4,1", 17_690, 7_291_040, 72),
    ("ResNeXt-A:stem=16;d=1,2,1;w=16,16,32;bm=1.0,0.5,0.25;g=4,2,2", 4_826, 2_099_520, 59),
    ("ResNeXt-A:stem=16;d=1,1,1;w=16,16,16;bm=0.5,0.5,0.5;g=2,2,2", 3_034, 1_378_464, 48),
]
#: MeCo of the last network, initialised by zcjax with ``jax.random.key(0)``, on
#: ``data.default_batch(4, seed=0)``: the reference's hooks on pycls's AnyNet carrying the same
#: weights (MeCo's ``get_score``).
MECO_REFERENCE = 3.042546


@pytest.mark.parametrize("k", range(len(PYCLS)))
def test_networks_match_pycls(k):
    text, params, macs, hooks = PYCLS[k]
    arch = NDSArch.from_string(text)
    assert param_count(arch) == param_count_traced(arch) == params
    assert flops(arch) == macs
    model = build(arch)
    variables = _zero_params(model)
    _, state = model.apply(variables, jnp.zeros((1, 32, 32, 3)), mutable=["intermediates"])
    sown = state["intermediates"]
    # pycls's hooks also fire on head.avg_pool, head.fc, head and the model (one value per
    # channel: MeCo scores them 0), which zcjax does not sow.
    weights = [1.0 if w is None else float(w) for _, w in contract.sites(sown, contract.HOOKED)]
    assert sum(weights) == hooks - 4
    # Multiply-accumulates counted from the traced network: output positions x kernel size.
    kernels = {"/".join(contract.path_names(p)[:-2]): x.size for p, x in
               jax.tree_util.tree_flatten_with_path(variables["params"])[0]
               if contract.is_layer_weight(p) and x.ndim == 4}
    outs = {"/".join(contract.path_names(p)[:-2]): x.shape for p, x in
            jax.tree_util.tree_flatten_with_path(sown)[0]
            if contract.path_names(p)[-2] == contract.CONV_OUT}
    assert set(kernels) == set(outs)
    traced = sum(kernels[n] * outs[n][1] * outs[n][2] for n in kernels)
    assert traced + arch.widths[-1] * 10 == macs


def test_meco_and_initialisation_match_pycls():
    model = build(NDSArch.from_string(PYCLS[-1][0]))
    variables = init(model, jax.random.key(0))
    score = proxies.get("meco").fn(model.apply, variables, data.default_batch(4, seed=0),
                                   jax.random.key(0))
    assert float(score) == pytest.approx(MECO_REFERENCE, rel=1e-5)
    # pycls's init_weights: conv kernels N(0, 2 / (k * k * out)), linear N(0, 0.01^2) with a zero
    # bias, batch norm scale 1 and shift 0 (no zero-init of the branches' last batch norm).
    flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    kernels = [x for p, x in flat if contract.is_layer_weight(p) and x.ndim == 4]
    assert len(kernels) == 1 + 3 * 3 + 2  # stem, 3 per block, 2 projections
    z = jnp.concatenate([(x / math.sqrt(2 / (x.shape[0] * x.shape[1] * x.shape[3]))).ravel()
                         for x in kernels])
    assert float(jnp.std(z)) == pytest.approx(1, abs=0.05) and abs(float(jnp.mean(z))) < 0.05
    fc = variables["params"]["head"]["fc"]["dense"]
    assert float(jnp.std(fc["kernel"])) == pytest.approx(0.01, rel=0.3)  # 160 draws
    assert not jnp.any(fc["bias"])
    for p, x in flat:
        module, leaf = contract.path_names(p)[-2:]
        if module.endswith("bn"):
            assert jnp.all(x == (1 if leaf == "scale" else 0)), (module, leaf)


def test_initialisers():
    key = jax.random.key(0)
    conv, dense, bias = network.initializers("pycls")
    kernel = conv(key, (3, 3, 64, 256))
    assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2 / (9 * 256)), rel=0.02)
    assert float(jnp.std(dense(key, (256, 1000)))) == pytest.approx(0.01, rel=0.02)
    assert not jnp.any(bias(key, (10,)))
    assert network.initializers("torch") == (None, None, None)  # the layers' PyTorch defaults
    with pytest.raises(ValueError, match="unknown NDS initialisation 'xavier'"):
        network.initializers("xavier")


def test_no_batch_norm_without_use_bn():
    arch = NDSArch.from_string("ResNeXt-A:stem=16;d=1,2,1;w=16,16,32;bm=1.0,0.5,0.25;g=4,2,2")
    model = build(arch)
    variables = _zero_params(model)
    x = jnp.ones((2, 32, 32, 3))
    _, with_bn = model.apply(variables, x, mutable=["intermediates"])
    _, without = model.apply(variables, x, use_bn=False, mutable=["intermediates"])
    # stem + 3 per branch + 2 projections (stride or width change in every stage but the
    # second block of stage 2)
    assert len(contract.bn_sites(with_bn["intermediates"])) == 1 + 3 * 4 + 2
    assert contract.bn_sites(without["intermediates"]) == []
    # Without batch norm, the branch's last convolution takes over the batch norm's two hooks.
    hooked = lambda s: sum(float(w) for _, w in contract.sites(s["intermediates"],  # noqa: E731
                                                               contract.HOOKED))
    assert hooked(without) == hooked(with_bn) - (1 + 3 * 4 + 2)


def test_config_validation_and_caps():
    space = spaces.get("nds_resnext_a")
    with pytest.raises(ValueError, match="unknown NDS initialisation 'xavier'"):
        space.config(weight_init="xavier")
    with pytest.raises(ValueError, match="max_depth must be in 1..inf"):
        space.config(max_depth=0)
    arch = NDSArch.from_string("ResNeXt-A:stem=16;d=16,1,4;w=64,128,16;bm=0.25,0.25,0.25;g=4,1,2")
    tiny = space.network_arch(arch, space.tiny_config())
    assert tiny.depths == (1, 1, 1) and tiny.widths == (16, 16, 16) and tiny.num_groups == (4, 1, 2)
    with pytest.raises(ValueError, match="4 groups do not divide the bottleneck width 2"):
        space.build(arch, space.config(max_width=8))
    assert space.param_count(arch, space.tiny_config()) == param_count(tiny)


# -- the published files -----------------------------------------------------------------------

def _record(net, params, record_flops, final, best, seed=1, epochs=5):
    """A record in the published format (the fields NDS writes, with short curves)."""
    net = json.loads(json.dumps(net))  # a copy: tests change records
    errors = [60.0, 30.0, 100 - best, 100 - best + 0.2, 100 - final][-epochs:]
    return {"net": net, "optim": {"base_lr": 0.1, "wd": 0.0005, "max_ep": len(errors)},
            "rng_seed": seed, "job_id": 1000 + seed, "params": params, "flops": record_flops,
            "exp_mem": 1.0, "act_mem": 1.0, "prec_time": {"train_fw_bw": 0.01},
            "iter_time": 0.06, "min_test_top1": 100 - best, "train_ep_loss": [2.0, float("nan")],
            "train_ep_top1": [50.0, 10.0], "test_ep_top1": errors,
            "train_it_loss": [2.3], "train_it_top1": [90.0]}


@pytest.fixture
def resnet_file(tmp_path):
    other = RESNET.sample(1, seed=3)[0]
    records = [_record(*NNI_RESNET),
               _record(other.to_record(), param_count(other), cost.record_flops(other), 91.0,
                       91.5),
               _record(*NNI_RESNET[:3], 93.29, 93.38, seed=2)]  # a second run of the first
    path = tmp_path / "ResNet.json"
    path.write_text(json.dumps(records))
    return path, other


def test_reader_on_a_file_in_the_published_format(resnet_file):
    path, other = resnet_file
    bench = NDSBenchmark.from_file(path)
    first = NDSArch.from_record(NNI_RESNET[0], "ResNet")
    assert isinstance(bench, NDSResNetBenchmark) and bench.space == "nds_resnet"
    assert bench.archs() == (first.to_string(), other.to_string()) and len(bench) == 2
    np.testing.assert_allclose(bench.lookup([first.to_string(), other]), [93.39, 91.0])
    np.testing.assert_allclose(bench.lookup([first], "best_test_accuracy"), [93.48])
    assert bench.is_higher_better()
    np.testing.assert_array_equal(bench.num_records([first, other]), [2, 1])
    np.testing.assert_array_equal(bench.published_params([first, other]),
                                  [param_count(first), param_count(other)])
    np.testing.assert_array_equal(bench.published_flops([first]), [cost.record_flops(first)])
    # A valid architecture the file lacks: NaN; not an architecture of the space: an error.
    missing = RESNET.sample(3, seed=99)[2]
    assert np.isnan(bench.lookup([missing])[0])
    with pytest.raises(ValueError, match="not a ResNet architecture"):
        bench.lookup([RESNEXT_A.sample(1)[0]])
    with pytest.raises(ValueError, match="expected '<design space>:"):
        bench.lookup(["nonsense"])
    with pytest.raises(ValueError, match="has no 'val_accuracy'"):
        bench.lookup([first], "val_accuracy")
    with pytest.raises(ValueError, match="has no data set 'cifar100'"):
        bench.lookup([first], dataset="cifar100")


def test_reader_takes_top_and_mid_and_resnext(tmp_path):
    arch = NDSArch.from_record(NNI_RESNEXT[0], "ResNeXt-A")
    path = tmp_path / "reruns.json"
    path.write_text(json.dumps({"top": [_record(*NNI_RESNEXT)], "mid": []}))
    with pytest.raises(ValueError, match="cannot tell the design space from the file name"):
        NDSBenchmark.from_file(path)
    bench = NDSBenchmark.from_file(path, "ResNeXt-A")
    assert isinstance(bench, NDSResNeXtABenchmark) and bench.space == "nds_resnext_a"
    np.testing.assert_allclose(bench.lookup([arch]), [90.39])
    np.testing.assert_allclose(bench.lookup([arch], "best_test_accuracy"), [90.48])


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON file"),
    ("[" * 100_000 + "]" * 100_000, "is not a JSON file"),
    ("[]", "the file has no records"),
    ('{"a": []}', "an object with the lists 'top' and 'mid'"),
    ("3", "expected a list of records, got int"),
    ("[3]", "record 0 is not an object (got int)"),
    ('[{"test_ep_top1": [5.0]}]', "record 0 has no 'net'"),
])
def test_reader_refuses_malformed_files(tmp_path, content, message):
    path = tmp_path / "ResNet.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        NDSBenchmark.from_file(path)
    assert message in str(info.value) and len(str(info.value)) < 1000


@pytest.mark.parametrize("change, message", [
    (lambda r: r["net"].update(block_type="double_plain_block"),
     "record 1: block_type 'double_plain_block' is not ResNet's 'res_basic_block'"),
    (lambda r: r["net"].update(ws=[16, 24, 1024, 40]),
     "record 1: width 1024 of stage 2 is outside the ResNet design space"),
    (lambda r: r["net"].update(ss=[1, 1, 2, 1]), "record 1: stage strides [1, 2, 1]"),
    (lambda r: r["net"].update(ds=[1, 12, 12]), "record 1: 'ds' must be a list of 4 entries"),
    (lambda r: r["net"].update(se_r=0.25), "record 1: squeeze-excitation"),
    (lambda r: r["net"].update(stem_type="res_stem_in"), "is not the CIFAR stem"),
    (lambda r: r["net"].update(bot_muls=[0.0, 1.0, 1.0, 1.0]), "'bot_muls' must be empty"),
    (lambda r: r.update(test_ep_top1=[]), "'test_ep_top1' must be a non-empty list"),
    (lambda r: r.update(test_ep_top1=[5.0, 101.0]), "test error 101.0 of epoch 2"),
    (lambda r: r.update(test_ep_top1=[5.0, "7"]), "test error '7' of epoch 2"),
    (lambda r: r.update(params=-1), "'params' must be a non-negative number"),
])
def test_reader_names_the_bad_record(tmp_path, change, message):
    records = [_record(*NNI_RESNET), _record(*NNI_RESNET)]
    change(records[1])
    path = tmp_path / "ResNet.json"
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError) as info:
        NDSBenchmark.from_file(path)
    assert message in str(info.value)


def test_reader_size_bound_and_missing_file(tmp_path, resnet_file):
    path, _ = resnet_file
    with pytest.raises(ValueError, match="more than max_bytes=100"):
        NDSBenchmark.from_file(path, max_bytes=100)
    with pytest.raises(FileNotFoundError, match="no NDS result file"):
        NDSBenchmark.from_file(tmp_path / "missing" / "ResNet.json")


def test_a_resnext_file_is_not_a_resnet_file(tmp_path):
    path = tmp_path / "ResNet.json"
    path.write_text(json.dumps([_record(*NNI_RESNEXT)]))
    with pytest.raises(ValueError, match="record 0: block_type 'res_bottleneck_block'"):
        NDSBenchmark.from_file(path)


def test_nan_errors_give_nan_accuracy(tmp_path):
    record = _record(*NNI_RESNET)
    record["test_ep_top1"] = [float("nan")] * 3
    bench = NDSBenchmark.from_records([record], "ResNet")
    assert np.isnan(bench.lookup(bench.archs())[0])
    assert np.isnan(bench.lookup(bench.archs(), "best_test_accuracy")[0])


def test_space_benchmark_reads_the_workspace(tmp_path, monkeypatch, resnet_file):
    monkeypatch.setenv("ZCJAX_WORKSPACE", str(tmp_path / "ws"))
    space = spaces.get("nds_resnet")
    assert space.benchmark() is None
    assert space.benchmark_path() == tmp_path / "ws" / "data" / "nds" / "ResNet.json"
    space.benchmark_path().parent.mkdir(parents=True)
    space.benchmark_path().write_bytes(resnet_file[0].read_bytes())
    bench = space.benchmark()
    assert isinstance(bench, NDSResNetBenchmark) and len(bench) == 2
    assert space.benchmark() is bench  # read once
    assert spaces.get("nds_resnext_a").benchmark() is None


def test_published_params_of_the_users_files():
    """On the user's own copies of the NDS files, if present: every record's ``params``."""
    benches = [spaces.get(n).benchmark() for n in ("nds_resnet", "nds_resnext_a")]
    if benches == [None, None]:
        pytest.skip("no NDS files in the workspace (data/nds/ResNet.json, ResNeXt-A.json)")
    for bench in benches:
        if bench is None:
            continue
        archs = bench.archs()
        counted = [param_count(NDSArch.from_string(a)) for a in archs]
        np.testing.assert_array_equal(bench.published_params(archs), counted)
        np.testing.assert_array_equal(bench.published_flops(archs),
                                      [cost.record_flops(NDSArch.from_string(a)) for a in archs])

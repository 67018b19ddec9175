"""Supernet training and one-shot scores, each against an independent computation.

A tiny NB201 supernet (C=4, N=1, the reference's ``naslib`` layers) is trained for a few steps
of 8 bundled CIFAR-10 images. Independent references:

* the first two steps equal plain SGD written out in NumPy (PyTorch 1.x semantics) on the
  gradients of the *static* networks of the two sampled cells, given the supernet's weights of
  their operations;
* the parameters of operations a cell lacks receive exactly zero gradient, and keep their
  initial values when no sampled cell has used them;
* a cell's one-shot accuracy and loss equal the static network's on the held-out batches;
* checkpoints of another configuration or data set, and damaged checkpoints, are refused with
  the folder untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from zcjax import contract, oneshot, spaces
from zcjax.oneshot import data as data_lib
from zcjax.oneshot import trainer
from zcjax.oneshot.optim import make_optimizer
from zcjax.oneshot.sampling import Sampler
from zcjax.spaces.nb201 import Genotype, supernet
from zcjax.sweep import ResultStore

pytestmark = pytest.mark.usefixtures("fast_compiles")

SPACE = spaces.get("nb201")
NET = SPACE.config(channels=4, cells_per_stage=1, convention="naslib")
# No dropout and no augmentation, so that the static network sees what the supernet saw.
CONFIG = oneshot.TrainConfig(network=NET, batch_size=8, epochs=2, dropout=0.0, augment=False,
                             seed=3)
CELLS = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
         "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
         "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]


@pytest.fixture(scope="module")
def images():
    train, held = oneshot.load_data("cifar10", holdout=0.2)
    return train.subset(0, 32), held.subset(0, 16)


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory, images):
    directory = tmp_path_factory.mktemp("run") / "supernet"
    result = oneshot.train(CONFIG, images[0], directory, max_steps=2, progress=False)
    assert result.supernet.step == 2
    return result


@pytest.fixture(scope="module")
def trained(two_steps, images):
    """The same run resumed to its end (2 epochs of 4 steps)."""
    result = oneshot.train(CONFIG, images[0], two_steps.supernet.directory, progress=False)
    assert result.resumed_from == 2 and result.supernet.step == 8
    assert [row["epoch"] for row in result.history] == [1, 2]
    return result


def flat(tree) -> dict[str, np.ndarray]:
    return {"/".join(contract.path_names(p)): np.asarray(v, np.float64)
            for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def initial_params(images):
    network = trainer.network_of(CONFIG)
    optimizer = make_optimizer(CONFIG, 4)
    return trainer.init_state(CONFIG, network, optimizer, images.image_shape).params


def static_grads(params, cell: Genotype, x, labels) -> dict[str, np.ndarray]:
    """Gradients of the static network of ``cell``, placed at the supernet's parameter paths
    (zero for parameters the cell does not use)."""
    model = SPACE.build(cell, NET)

    def loss(p):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.jit(jax.grad(loss))(supernet.to_static(params, cell))
    out = {k: np.zeros_like(v) for k, v in flat(params).items()}
    for name, g in flat(grads).items():
        parts = name.split("/")
        if parts[0].startswith("cell_"):
            to, frm = parts[1].split("_")[2], parts[1].split("_")[1]
            if cell.op(int(to), int(frm)) == "nor_conv_1x1":
                parts[1] += "_1x1"
        out["/".join(parts)] = g
    return out


def test_two_steps_equal_sgd_written_out_on_the_static_networks(two_steps, images):
    train_images = images[0]
    params = flat(initial_params(train_images))
    sampler = Sampler(SPACE, trainer.network_of(CONFIG), CONFIG.sampling)
    order = data_lib.epoch_order(CONFIG.seed, 0, len(train_images))
    momentum, had_grad = {}, set()
    for step in range(2):
        rows = order[step * 8:(step + 1) * 8]
        x = data_lib.normalize(jnp.asarray(train_images.images[rows]), train_images.mean,
                               train_images.std)
        cell = Genotype.from_op_indices(sampler(CONFIG.seed, step)[0])
        tree = jax.tree.map(jnp.asarray, _unflatten(params, initial_params(train_images)))
        grads = static_grads(tree, cell, x, jnp.asarray(train_images.labels[rows]))
        present = {k for k, v in flat(supernet.presence(tree, supernet.genotype_array(cell)))
                   .items() if v == 1}
        # torch.optim.SGD after clip_grad_norm_, PyTorch 1.x: a parameter used before has a
        # zero gradient, one never used has none and is skipped.
        had_grad |= present
        norm = math.sqrt(sum(float(np.sum(grads[k] ** 2)) for k in had_grad))
        coef = min(1.0, CONFIG.grad_clip / (norm + 1e-6))
        for k in had_grad:
            d = grads[k] * coef + CONFIG.weight_decay * params[k]
            momentum[k] = d if k not in momentum else CONFIG.momentum * momentum[k] + d
            params[k] = params[k] - CONFIG.learning_rate * momentum[k]
    got = flat(two_steps.supernet.params)
    assert got.keys() == params.keys()
    for k in params:
        np.testing.assert_allclose(got[k], params[k], rtol=1e-4, atol=2e-6, err_msg=k)


def _unflatten(values: dict[str, np.ndarray], like):
    leaves = [values["/".join(contract.path_names(p))]
              for p, _ in jax.tree_util.tree_flatten_with_path(like)[0]]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def test_the_sampled_cell_is_the_one_trained(two_steps, images):
    network = trainer.network_of(CONFIG)
    params = initial_params(images[0])
    cell = jnp.asarray(supernet.genotype_array(CELLS[0]))
    x = data_lib.normalize(jnp.asarray(images[0].images[:8]), images[0].mean, images[0].std)
    labels = jnp.asarray(images[0].labels[:8])

    def loss(p):
        logits = network.train_apply(network.variables_for(p, cell), x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = flat(jax.jit(jax.grad(loss))(params))
    present = flat(network.presence(params, cell))
    absent = [k for k, v in present.items() if v == 0]
    # The cell has two 3x3 convs and a 1x1 one: 9 of the 12 kernels of each cell are absent.
    assert len([k for k in absent if k.endswith("kernel")]) == 3 * (12 - 3)
    for k in absent:
        assert not np.any(grads[k]), k
    for k, v in present.items():
        if v == 1 and k.endswith("kernel"):
            assert np.any(grads[k]), k
    # In training: parameters that neither sampled cell used still hold their initial values.
    sampler = Sampler(SPACE, network, CONFIG.sampling)
    used = [flat(network.presence(params, sampler(CONFIG.seed, s)[0])) for s in range(2)]
    before, after = flat(params), flat(two_steps.supernet.params)
    for k in before:
        if used[0][k] == 0 and used[1][k] == 0:
            np.testing.assert_array_equal(after[k], before[k], err_msg=k)
        elif k.endswith("kernel"):
            assert not np.array_equal(after[k], before[k]), k


def test_oneshot_scores_equal_the_static_networks(trained, images):
    held = images[1]
    net = oneshot.load(trained.supernet.directory)
    assert net.checkpoint_hash == trained.supernet.checkpoint_hash and net.step == 8
    scores = oneshot.score_archs(net, CELLS, held, batch_size=8, progress=False)
    assert scores.archs == tuple(CELLS)
    x = data_lib.normalize(jnp.asarray(held.images), held.mean, held.std)
    for i, cell in enumerate(CELLS):
        model = SPACE.build(cell, NET)
        static = supernet.to_static(net.params, cell)
        accs, losses = [], []
        for b in range(2):  # batch norm normalises each batch of 8 with its own statistics
            logits = model.apply({"params": static}, x[8 * b:8 * b + 8])
            labels = held.labels[8 * b:8 * b + 8]
            accs.append(np.mean(np.argmax(logits, -1) == labels))
            losses.append(float(optax.softmax_cross_entropy_with_integer_labels(
                logits, labels).mean()))
        assert scores.accuracy[i] == pytest.approx(np.mean(accs), abs=1e-7), cell
        assert scores.loss[i] == pytest.approx(np.mean(losses), rel=1e-5), cell


def test_scores_are_stored_and_read_back_like_proxy_scores(trained, images, tmp_path):
    from experiments import common, correlate
    from zcjax.evaluate import metrics

    net = trained.supernet
    path = tmp_path / "scores.sqlite"
    with ResultStore(path) as store:
        first = oneshot.score_archs(net, CELLS, images[1], batch_size=8, store=store,
                                    progress=False)
        assert len(store) == 2 * len(CELLS)
        again = oneshot.score_archs(net, CELLS, images[1], batch_size=8, store=store,
                                    progress=False)
        assert len(store) == 2 * len(CELLS)
        np.testing.assert_array_equal(again.loss, first.loss)
        rec = store.get("nb201", CELLS[0], "oneshot_loss", first.config_hash, CONFIG.seed,
                        first.batch_hash)
        assert rec.value == pytest.approx(first.loss[0])
    result = correlate.run(path, common.Setting(), tmp_path / "corr",
                           proxies="oneshot_accuracy,oneshot_loss",
                           config_hash=first.config_hash, batch_hash=first.batch_hash,
                           metrics=("kendall_tau",))
    truth = SPACE.benchmark().lookup(CELLS, "test_accuracy", "cifar10")
    rows = {r["proxy"]: r["kendall_tau"] for r in result.rows}
    # Lower loss is better: correlate turns it round, as it does for proxies.
    assert rows["oneshot_loss"] == pytest.approx(metrics.kendall_tau(-first.loss, truth).value)
    assert rows["oneshot_accuracy"] == pytest.approx(
        metrics.kendall_tau(first.accuracy, truth).value)


def test_the_config_hash_names_the_checkpoint(trained, two_steps):
    a = oneshot.scores_config_hash(trained.supernet, 8, 2)
    b = oneshot.scores_config_hash(two_steps.supernet, 8, 2)
    assert a != b and a == oneshot.scores_config_hash(trained.supernet, 8, 2)
    assert a != oneshot.scores_config_hash(trained.supernet, 16, 1)


# -- bad input ---------------------------------------------------------------------------

def snapshot(directory: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def run_copy(trained, tmp_path) -> pathlib.Path:
    copy = tmp_path / "copy"
    shutil.copytree(trained.supernet.directory, copy)
    return copy


@pytest.mark.parametrize("change", ["channels", "seed", "data", "sampling"])
def test_a_checkpoint_of_another_run_is_refused_untouched(run_copy, images, change):
    config, train_images = CONFIG, images[0]
    if change == "channels":
        config = CONFIG.replace(network=NET.replace(channels=8))
    elif change == "seed":
        config = CONFIG.replace(seed=4)
    elif change == "sampling":
        config = CONFIG.replace(sampling="fair")
    else:
        train_images = images[0].subset(0, 24)
    before = snapshot(run_copy)
    with pytest.raises(oneshot.CheckpointMismatchError,
                       match="another run" + (f".*{change}" if change != "data" else "")):
        oneshot.train(config, train_images, run_copy, progress=False)
    assert snapshot(run_copy) == before


def test_weights_that_changed_on_disk_are_caught_by_their_hash(run_copy, images):
    latest = max(int(p.name) for p in run_copy.iterdir() if p.name.isdigit())
    meta = run_copy / str(latest) / "meta" / "metadata"
    text = meta.read_text()
    saved = json.loads(text)["params_hash"]
    meta.write_text(text.replace(saved, "0" * len(saved)))  # as if the arrays had changed
    with pytest.raises(oneshot.CheckpointCorruptError, match="do not match the hash"):
        oneshot.load(run_copy)


@pytest.mark.parametrize("part", ["state", "meta"])
def test_a_damaged_checkpoint_is_a_clear_error_and_nothing_is_written(run_copy, images, part):
    latest = max(int(p.name) for p in run_copy.iterdir() if p.name.isdigit())
    # Every file of the item: OCDBT keeps data files that a restore does not read (the
    # per-process store beside the merged one), and damage there would change nothing.
    for target in (run_copy / str(latest) / part).rglob("*"):
        if target.is_file() and target.stat().st_size > 16:
            data = bytearray(target.read_bytes())
            data[len(data) // 2:len(data) // 2 + 8] = b"\xff" * 8
            target.write_bytes(bytes(data))
    before = snapshot(run_copy)
    with pytest.raises(oneshot.CheckpointCorruptError, match=f"{latest}.*damaged"):
        oneshot.train(CONFIG, images[0], run_copy, progress=False)
    with pytest.raises(oneshot.CheckpointCorruptError):
        oneshot.load(run_copy)
    assert snapshot(run_copy) == before


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="sampling.*roulette|roulette.*uniform"):
        oneshot.TrainConfig(sampling="roulette")
    with pytest.raises(ValueError, match="schedule"):
        oneshot.TrainConfig(schedule="sometimes")
    with pytest.raises(ValueError, match="batch_size"):
        oneshot.TrainConfig(batch_size=0)
    with pytest.raises(TypeError, match="learning_rate"):
        oneshot.TrainConfig(learning_rate="0.1")
    with pytest.raises(ValueError, match="channels"):
        oneshot.TrainConfig(network=NET.replace(channels=-1))


def test_images_that_do_not_fit_are_refused(tmp_path):
    imgs = oneshot.ImageSet(np.zeros((16, 16, 16, 3), np.uint8), np.zeros(16, np.int32),
                            (0.5,) * 3, (0.25,) * 3, "small")
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(32, 32, 3\)"):
        oneshot.train(CONFIG, imgs, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


# -- sampling and augmentation -------------------------------------------------------------

def test_fair_sampling_trains_every_operation_once_per_step():
    sampler = Sampler(SPACE, SPACE.scorer(NET), "fair")
    for step in range(3):
        paths = sampler(0, step)
        assert paths.shape == (5, 6)
        for edge in range(6):
            assert sorted(paths[:, edge]) == [0, 1, 2, 3, 4]
    assert not np.array_equal(sampler(0, 0), sampler(0, 1))


def test_deiso_sampling_draws_isomorphism_classes():
    sampler = Sampler(SPACE, SPACE.scorer(NET), "deiso", paths_per_step=2)
    assert sampler.pool_size == 6466
    forms = {SPACE.canonical(Genotype.from_op_indices(p)) for p in sampler.pool}
    assert len(forms) == 6466
    np.testing.assert_array_equal(sampler(5, 9), sampler(5, 9))
    assert sampler(5, 9).shape == (2, 6)


def test_uniform_sampling_is_a_function_of_seed_and_step():
    sampler = Sampler(SPACE, SPACE.scorer(NET), "uniform")
    draws = np.concatenate([sampler(1, s) for s in range(500)])
    np.testing.assert_array_equal(draws[7], sampler(1, 7)[0])
    counts = np.bincount(draws.ravel(), minlength=5)
    assert counts.min() > 500  # 3,000 draws of 5 operations, about 600 each


def test_augment_crops_the_zero_padded_image_and_flips_it():
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    out = np.asarray(data_lib.augment(jax.random.key(0), jnp.asarray(batch), 2))
    padded = np.pad(batch, ((0, 0), (2, 2), (2, 2), (0, 0)))
    flips = 0
    for image, crop in zip(padded, out):
        matches = [(y, x, f) for y in range(5) for x in range(5) for f in (False, True)
                   if np.array_equal(crop, (image[y:y + 8, x:x + 8][:, ::-1] if f
                                            else image[y:y + 8, x:x + 8]))]
        assert matches, "not a crop of the padded image"
        flips += matches[0][2]
    assert 0 < flips < 6


def test_a_half_deleted_older_checkpoint_does_not_stop_a_resume(run_copy, images, trained):
    """What a kill during orbax's removal of an old checkpoint leaves behind."""
    steps = sorted(int(p.name) for p in run_copy.iterdir() if p.name.isdigit())
    assert len(steps) >= 2
    shutil.rmtree(run_copy / str(steps[0]) / "meta")
    result = oneshot.train(CONFIG, images[0], run_copy, progress=False)
    assert result.resumed_from == steps[-1]
    assert result.supernet.checkpoint_hash == trained.supernet.checkpoint_hash

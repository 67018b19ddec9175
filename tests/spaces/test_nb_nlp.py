"""NAS-Bench-NLP: recipes, canonical form, generator, the scan network, costs and epsilon.

Reference facts used here:
- recipe strings and ``num_params`` of runs in the benchmark's published WikiText-2 logs
  (``fmsnew/nas-bench-nlp-release`` ``train_logs_wikitext-2/logs.zip``, vocabulary 33,278);
- two recipes of the reference generator (``search_space.py``, ``RecepieGenerator(1, 7)
  .generate_random_recepie(seed)`` for seeds 0 and 3; with one hidden state the reference's
  draws do not depend on Python's string hashing);
- epsilon's NAS-Bench-NLP procedure (``egracheva/epsinas`` ``NAS-Bench-NLP/epsinas_utils.py``),
  recomputed by hand below.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zcjax import contract, proxies, scoring, spaces
from zcjax.proxies import epsilon as eps
from zcjax.proxies.flops import forward_macs
from zcjax.spaces import nb_nlp
from zcjax.spaces.nb_nlp import generator, isomorphism, network
from zcjax.spaces.nb_nlp.recipe import EXAMPLES, Recipe

SPACE = spaces.get("nb_nlp")

#: Every operation, a 3-input linear node, two hidden states, a node reading a new hidden state
#: and nodes listed out of topological order (as some of the benchmark's logs list them).
ALL_OPS = json.dumps({
    "h_new_0": {"op": "blend", "input": ["g", "t", "h_new_1"]},
    "a": {"op": "linear", "input": ["x", "h_prev_0", "h_prev_1"]},
    "t": {"op": "activation_tanh", "input": ["a"]},
    "b": {"op": "linear", "input": ["t", "x"]},
    "g": {"op": "activation_sigm", "input": ["b"]},
    "l": {"op": "activation_leaky_relu", "input": ["b"]},
    "p": {"op": "elementwise_prod", "input": ["l", "h_prev_1"]},
    "h_new_1": {"op": "elementwise_sum", "input": ["p", "t"]},
})

#: (recipe, num_params) of runs in the WikiText-2 logs (V = 33,278, E = 400, H = 600, L = 3).
WT2_LOGS = [
    (EXAMPLES["rnn"], 15066078),
    (EXAMPLES["lstm"], 20230878),
    (EXAMPLES["gru"], 18509278),
    ('{"node_1": {"op": "linear", "input": ["h_prev_0", "h_prev_1"]}, "node_2": {"op": '
     '"activation_tanh", "input": ["node_1"]}, "node_7": {"op": "linear", "input": ["node_2", '
     '"x"]}, "h_new_0": {"op": "activation_sigm", "input": ["node_7"]}, "h_new_1": {"op": '
     '"elementwise_prod", "input": ["node_2", "node_7"]}}', 16827678),
    ('{"node_0": {"op": "elementwise_prod", "input": ["h_prev_0", "h_prev_2"]}, "node_1": '
     '{"op": "linear", "input": ["h_prev_0", "h_prev_1"]}, "node_2": {"op": '
     '"activation_leaky_relu", "input": ["node_1"]}, "node_3": {"op": "elementwise_prod", '
     '"input": ["node_0", "h_prev_2"]}, "node_8": {"op": "linear", "input": ["h_prev_2", '
     '"h_prev_0"]}, "node_9": {"op": "activation_tanh", "input": ["node_8"]}, "node_12": {"op": '
     '"linear", "input": ["node_9", "x"]}, "h_new_0": {"op": "activation_tanh", "input": '
     '["node_12"]}, "h_new_1": {"op": "linear", "input": ["h_new_0", "x"]}, "h_new_2": {"op": '
     '"elementwise_prod", "input": ["node_3", "node_2"]}}', 20310878),
]


def _recipe(nodes: dict) -> Recipe:
    return Recipe.from_dict(nodes)


# -- recipes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [*EXAMPLES.values(), ALL_OPS, *(t for t, _ in WT2_LOGS)])
def test_recipe_strings_round_trip_in_the_logs_format(text):
    recipe = SPACE.parse(text)
    assert SPACE.format(recipe) == text  # json.dumps with default separators, own node order
    assert Recipe.from_dict(json.loads(text)) == recipe
    assert SPACE.parse(json.dumps(json.loads(text), indent=2)) == recipe  # any spacing


def test_structure():
    lstm = SPACE.parse(EXAMPLES["lstm"])
    assert lstm.num_hidden == 2 and lstm.count("linear") == 4
    cell = SPACE.parse(ALL_OPS)
    order = cell.order
    for node in cell.nodes:
        assert all(order.index(i) < order.index(node.name) for i in node.inputs if i in order)


_LIN = {"op": "linear", "input": ["x", "h_prev_0"]}


@pytest.mark.parametrize("nodes, message", [
    ({"a": _LIN, "h_new_0": {"op": "activation_tanh", "input": ["b"]}}, "reads 'b'"),
    ({"h_new_0": {"op": "linear", "input": ["x", "h_prev_1"]}}, "1 hidden state"),
    ({"a": {"op": "linear", "input": ["x", "b"]}, "b": {"op": "activation_tanh", "input": ["a"]},
      "h_new_0": {"op": "activation_tanh", "input": ["b"]}}, "cycle"),
    ({"a": _LIN}, "missing output.*h_new_0"),
    ({"h_new_0": _LIN, "h_new_2": _LIN}, "missing output.*h_new_1"),
    ({"h_new_0": {"op": "blend", "input": ["x", "h_prev_0"]}}, "blend takes 3"),
    ({"h_new_0": {"op": "elementwise_sum", "input": ["x", "x", "x"]}}, "takes 2"),
    ({"h_new_0": {"op": "conv3x3", "input": ["x"]}}, "unknown op"),
    ({"h_new_0": _LIN, "spare": _LIN}, "feed no new hidden state"),
    ({"h_prev_0": _LIN, "h_new_0": _LIN}, "cell input"),
    ({"h_new_0": {"op": "linear"}}, "expected"),
    ({"h_new_0": {"op": "linear", "input": "x"}}, "list of node names"),
    ({"h_new_00": _LIN}, "leading zeros"),
])
def test_invalid_recipes_are_a_clear_error(nodes, message):
    with pytest.raises(ValueError, match=message):
        SPACE.parse(json.dumps(nodes))


def test_repeated_node_in_the_json_text_is_an_error():
    node = '"h_new_0": {"op": "linear", "input": ["x"]}'
    text = "{" + node + ", " + node + "}"
    with pytest.raises(ValueError, match="defined twice"):
        SPACE.parse(text)


# -- canonical form ----------------------------------------------------------------------------

def _renamed(text: str, reverse_symmetric: bool = True) -> str:
    """Intermediate nodes renamed, listed in another order, symmetric inputs reversed."""
    nodes = json.loads(text)
    names = {k: (k if k.startswith("h_new_") and k[6:].isdigit() else f"v{i}")
             for i, k in enumerate(nodes)}
    out = {}
    for name, spec in reversed(list(nodes.items())):
        inputs = [names.get(i, i) for i in spec["input"]]
        if reverse_symmetric and spec["op"] in ("linear", "elementwise_sum", "elementwise_prod"):
            inputs.reverse()
        out[names[name]] = {"op": spec["op"], "input": inputs}
    return json.dumps(out)


@pytest.mark.parametrize("text", [EXAMPLES["lstm"], EXAMPLES["gru"], ALL_OPS, WT2_LOGS[-1][0]])
def test_canonical_ignores_names_order_and_symmetric_inputs(text):
    canonical = SPACE.canonical(text)
    assert SPACE.canonical(_renamed(text)) == canonical
    assert SPACE.canonical(canonical) == canonical  # a fixed point, itself a valid recipe
    assert SPACE.arch_hash(text) == SPACE.arch_hash(_renamed(text))


def test_canonical_permutes_hidden_states_but_keeps_the_output():
    def cell(first, second):
        return {"a": {"op": "linear", "input": ["x", first]},
                "h_new_1": {"op": "activation_tanh", "input": ["a"]},
                "b": {"op": "linear", "input": ["x", second]},
                "h_new_2": {"op": "activation_sigm", "input": ["b"]},
                "h_new_0": {"op": "elementwise_sum", "input": ["h_new_1", "h_new_2"]}}

    swapped = {"a": {"op": "linear", "input": ["x", "h_prev_2"]},
               "h_new_2": {"op": "activation_tanh", "input": ["a"]},
               "b": {"op": "linear", "input": ["x", "h_prev_1"]},
               "h_new_1": {"op": "activation_sigm", "input": ["b"]},
               "h_new_0": {"op": "elementwise_sum", "input": ["h_new_2", "h_new_1"]}}
    assert isomorphism.canonical(_recipe(cell("h_prev_1", "h_prev_2"))) == \
        isomorphism.canonical(_recipe(swapped))
    # h_new_0 is the output: exchanging it with another hidden state changes the network
    out = {"a": _LIN, "h_new_0": {"op": "activation_tanh", "input": ["a"]},
           "h_new_1": {"op": "activation_sigm", "input": ["a"]}}
    flipped = {"a": _LIN, "h_new_1": {"op": "activation_tanh", "input": ["a"]},
               "h_new_0": {"op": "activation_sigm", "input": ["a"]}}
    assert isomorphism.canonical(_recipe(out)) != isomorphism.canonical(_recipe(flipped))


def test_canonical_merges_only_parameter_free_duplicates():
    gate = {"g": _LIN}
    twice = {**gate, "t1": {"op": "activation_tanh", "input": ["g"]},
             "t2": {"op": "activation_tanh", "input": ["g"]},
             "h_new_0": {"op": "elementwise_sum", "input": ["t1", "t2"]}}
    once = {**gate, "t": {"op": "activation_tanh", "input": ["g"]},
            "h_new_0": {"op": "elementwise_sum", "input": ["t", "t"]}}
    assert isomorphism.canonical(_recipe(twice)) == isomorphism.canonical(_recipe(once))
    two_linear = {"g": _LIN, "k": _LIN, "h_new_0": {"op": "elementwise_sum", "input": ["g", "k"]}}
    one_linear = {"g": _LIN, "h_new_0": {"op": "elementwise_sum", "input": ["g", "g"]}}
    assert isomorphism.canonical(_recipe(two_linear)) != isomorphism.canonical(_recipe(one_linear))


def test_canonical_keeps_the_gate_of_blend():
    base = {"g": _LIN, "s": {"op": "activation_sigm", "input": ["g"]}}
    a = {**base, "h_new_0": {"op": "blend", "input": ["s", "h_prev_0", "x"]}}
    b = {**base, "h_new_0": {"op": "blend", "input": ["s", "x", "h_prev_0"]}}
    assert isomorphism.canonical(_recipe(a)) != isomorphism.canonical(_recipe(b))


# -- generator ---------------------------------------------------------------------------------

def test_generator_reproduces_the_reference_draws():
    assert json.dumps(generator.generate(0, 1, 7)[0]) == (
        '{"node_0": {"op": "linear", "input": ["h_prev_0", "x"]}, "node_1": {"op": '
        '"activation_tanh", "input": ["node_0"]}, "node_4": {"op": "linear", "input": '
        '["node_1", "x"]}, "h_new_0": {"op": "activation_tanh", "input": ["node_4"]}}')
    assert json.dumps(generator.generate(3, 1, 7)[0]) == (
        '{"node_0": {"op": "linear", "input": ["x", "h_prev_0"]}, "node_1": {"op": '
        '"activation_sigm", "input": ["node_0"]}, "h_new_0": {"op": "linear", "input": '
        '["x", "node_1"]}}')


def test_sampled_cells_are_valid_distinct_and_seeded():
    cells = SPACE.sample(20, seed=7)
    assert cells == SPACE.sample(20, seed=7) and cells != SPACE.sample(20, seed=8)
    assert len({c.to_string() for c in cells}) == 20
    for cell in cells:
        used = {i for n in cell.nodes for i in n.inputs}
        assert "x" in used and all(f"h_prev_{k}" in used for k in range(cell.num_hidden))
        assert 1 <= cell.num_hidden <= 3


# -- the network -------------------------------------------------------------------------------

def _loop_logits(recipe: Recipe, params, tokens, *, layers, fill=0.0):
    """The network by hand: a Python loop over layers, time steps and the recipe's nodes."""
    act = {"activation_tanh": np.tanh, "activation_sigm": lambda v: 1 / (1 + np.exp(-v)),
           "activation_leaky_relu": lambda v: np.where(v > 0, v, 0.01 * v)}
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    emb = p["encoder"]["embedding"]
    seq = emb[np.asarray(tokens)]  # (N, T, E)
    outputs = []
    for layer, (_, hidden) in enumerate(layers):
        cell = p[f"rnn_{layer}"]["cell"]
        state = [np.full((seq.shape[0], hidden), fill) for _ in range(recipe.num_hidden)]
        steps = []
        for t in range(seq.shape[1]):
            values = {"x": seq[:, t], **{f"h_prev_{k}": h for k, h in enumerate(state)}}
            pending = list(recipe.nodes)
            while pending:  # compute whatever is ready: no use of the recipe's own order
                node = next(n for n in pending if all(i in values for i in n.inputs))
                pending.remove(node)
                a = [values[i] for i in node.inputs]
                if node.op == "linear":
                    w = cell[node.name]
                    v = w["bias"] + sum(ai @ w[f"in{i}"]["dense"]["kernel"]
                                        for i, ai in enumerate(a))
                elif node.op == "blend":
                    v = a[0] * a[1] + (1 - a[0]) * a[2]
                elif node.op == "elementwise_prod":
                    v = a[0] * a[1]
                elif node.op == "elementwise_sum":
                    v = a[0] + a[1]
                else:
                    v = act[node.op](a[0])
                values[node.name] = v
            state = [values[f"h_new_{k}"] for k in range(recipe.num_hidden)]
            steps.append(state[0])
        seq = np.stack(steps, axis=1)
        outputs.append(seq)
    return seq @ emb.T + p["decoder_bias"], outputs


@pytest.fixture(scope="module")
def tiny():
    config = SPACE.tiny_config()
    model = SPACE.build(ALL_OPS, config)
    batch = SPACE.example_batch(config, size=3)
    params = model.init(jax.random.key(0), batch.tokens)["params"]
    return config, model, batch, params


def test_scan_network_equals_a_loop_over_time_steps(tiny):
    config, model, batch, params = tiny
    logits, state = model.apply({"params": params}, batch.tokens,
                                mutable=[contract.INTERMEDIATES])
    layers = network.layer_sizes(config.embedding_size, config.hidden_size, config.num_layers,
                                 config.tied)
    expected, outputs = _loop_logits(SPACE.parse(ALL_OPS), params, batch.tokens, layers=layers)
    assert logits.shape == (3, config.seq_len, config.num_classes)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    sown = contract.values(state[contract.INTERMEDIATES], contract.RNN_OUT)
    assert len(sown) == config.num_layers
    for got, want in zip(sown, outputs):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the initial-state collection fills every hidden state (epsilon's reference)
    filled = model.apply({"params": params, contract.INITIAL_STATE: {"fill": 0.3}}, batch.tokens)
    np.testing.assert_allclose(filled, _loop_logits(SPACE.parse(ALL_OPS), params, batch.tokens,
                                                    layers=layers, fill=0.3)[0],
                               rtol=1e-5, atol=1e-6)


def test_embedded_inputs_skip_the_lookup(tiny):
    _, model, batch, params = tiny
    embedded = params["encoder"]["embedding"][batch.tokens]
    np.testing.assert_allclose(model.apply({"params": params}, embedded),
                               model.apply({"params": params}, batch.tokens), rtol=1e-6)


def test_initialisation_follows_the_reference(tiny):
    config, _, _, params = tiny
    emb = params["encoder"]["embedding"]
    assert emb.shape == (config.num_classes, config.embedding_size)
    assert float(jnp.max(jnp.abs(emb))) <= 0.1
    assert not jnp.any(params["decoder_bias"])
    for layer, (_, hidden) in enumerate(network.layer_sizes(4, 6, 2, True)):
        leaves = jax.tree.leaves(params[f"rnn_{layer}"])
        assert max(float(jnp.max(jnp.abs(a))) for a in leaves) <= 1 / np.sqrt(hidden)
    # the per-input matrices are what proxies count as linear layers
    counted = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
               if contract.is_layer_weight(p)]
    assert len(counted) == config.num_layers * 5  # a: 3 inputs, b: 2 inputs


@pytest.mark.parametrize("text, expected", WT2_LOGS)
def test_param_count_equals_the_logs(text, expected):
    config = SPACE.config(num_classes=33278)
    assert SPACE.param_count(text, config) == expected


def test_cost_equals_the_network(tiny):
    config, model, batch, params = tiny
    assert SPACE.param_count(ALL_OPS, config) == sum(a.size for a in jax.tree.leaves(params))
    macs = forward_macs(model.apply, {"params": params}, (config.seq_len,), jnp.int32)
    assert SPACE.flops(ALL_OPS, config) == macs
    # one time step of one example, by hand: a = 3 matrices, b = 2, per layer; then the decoder
    per_step = (4 * 6 + 6 * 6 + 6 * 6) + (6 * 6 + 4 * 6) + (6 * 4 + 4 * 4 + 4 * 4) + (4 * 4 + 6 * 4)
    assert macs == config.seq_len * (per_step + 4 * config.num_classes)


# -- proxies on token batches ------------------------------------------------------------------

def test_image_proxies_are_refused_on_tokens(tiny):
    _, model, batch, _ = tiny
    for name in ("zen", "epe_nas", "croze", "meco", "fisher"):
        assert "tokens" not in proxies.get(name).inputs
        with pytest.raises(ValueError, match=f"{name}' does not apply to tokens"):
            scoring.score(model, batch, [name], jit=False)


def test_score_checks_the_batch_against_the_space(tiny):
    config, model, batch, _ = tiny
    spec = SPACE.input_spec(config)
    wrong = SPACE.input_spec(SPACE.config(seq_len=9))
    scoring.check_inputs(batch, ["params"], spec)
    with pytest.raises(ValueError, match="shape"):
        scoring.check_inputs(batch, ["params"], wrong)
    with pytest.raises(ValueError, match="labels"):
        scoring.check_inputs(batch._replace(labels=batch.labels[:, :2]), ["params"])


def _hand_epsilon(tokens, vocab, size, weights):
    """Epsilon of a one-layer 'rnn' cell (h' = tanh(W_x x + W_h h + b)), all by hand.

    Every matrix entry and bias is w, so every unit of h' equals
    tanh(w * sum(x) + w * size * h + w); h starts at w; x is the fixed uniform embedding row.
    """
    emb = np.asarray(jax.random.uniform(jax.random.key(eps.EMBEDDING_SEED), (vocab, size),
                                        jnp.float32), np.float64)
    normalised = []
    for w in weights:
        h = np.full(tokens.shape[0], w)
        outs = []
        for t in range(tokens.shape[1]):
            h = np.tanh(w * emb[tokens[:, t]].sum(axis=1) + w * size * h + w)
            outs.append(h)
        y = np.stack(outs, axis=1).ravel()
        normalised.append((y - y.min()) / (y.max() - y.min()))
    p = np.array(normalised)
    p[p == 0] = np.nan
    return np.nanmean(np.abs(p[0] - p[1])) / np.nanmean(p)


def test_epsilon_on_a_tiny_recurrent_cell_equals_a_hand_computation():
    config = SPACE.config(embedding_size=3, num_layers=1, seq_len=4)
    model = SPACE.build(EXAMPLES["rnn"], config)
    batch = SPACE.example_batch(config, size=5)
    variables = {"params": model.init(jax.random.key(1), batch.tokens)["params"]}
    weights = SPACE.proxy_options["epsilon"]["weights"]
    assert weights == (1e-5, 1e-3) and SPACE.proxy_options["epsilon"]["scheme"] == "recurrent"
    assert eps.epsilon_for("NAS-Bench-NLP") == weights  # Reproduce.ipynb: weights = [1e-5, 1e-3]
    expected = _hand_epsilon(np.asarray(batch.tokens), config.num_classes, 3, weights)
    got = eps.epsilon(model.apply, variables, batch, weights=weights, scheme="recurrent",
                      dtype=jnp.float64)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # float32, as the reference computes: the same up to its rounding of the small outputs
    got32 = eps.epsilon(model.apply, variables, batch, weights=weights, scheme="recurrent")
    np.testing.assert_allclose(float(got32), expected, rtol=0.05)
    with pytest.raises(ValueError, match="unknown epsilon scheme"):
        eps.epsilon(model.apply, variables, batch, scheme="lstm")
    # the network's own initialisation does not enter
    other = {"params": model.init(jax.random.key(2), batch.tokens)["params"]}
    assert float(eps.epsilon(model.apply, other, batch, weights=weights, scheme="recurrent",
                             dtype=jnp.float64)) == float(got)


def test_scoring_batch_is_the_references():
    config = SPACE.config()
    batch = nb_nlp.scoring_batch(config)
    assert batch.tokens.shape == batch.labels.shape == (256, 70)
    words = nb_nlp.corpus()
    per_stream = len(words.train) // 256
    np.testing.assert_array_equal(batch.tokens[5], words.train[5 * per_stream:5 * per_stream + 70])
    np.testing.assert_array_equal(batch.labels[5],
                                  words.train[5 * per_stream + 1:5 * per_stream + 71])
    with pytest.raises(ValueError, match="predicts 50"):
        nb_nlp.scoring_batch(SPACE.config(num_classes=50))


def test_benchmark_is_none_without_logs(tmp_path):
    assert SPACE.benchmark(tmp_path) is None


def test_scoring_batch_reads_the_users_ptb(tmp_path):
    folder = tmp_path / "ptb"
    folder.mkdir()
    for split, line in (("train", " a b c d e f g h i j k l \n"), ("valid", " a b \n"),
                        ("test", " c d \n")):
        (folder / f"ptb.{split}.txt").write_text(line)
    config = SPACE.config(num_classes=13, seq_len=3)
    batch = nb_nlp.scoring_batch(config, size=2, source="ptb", root=tmp_path)
    # ids by first appearance (a=0 .. l=11, <eos>=12); two streams of 6 (the 13th id dropped)
    np.testing.assert_array_equal(batch.tokens, [[0, 1, 2], [6, 7, 8]])
    np.testing.assert_array_equal(batch.labels, [[1, 2, 3], [7, 8, 9]])
    with pytest.raises(ValueError, match="unknown text source"):
        nb_nlp.scoring_batch(config, source="wikitext")


def test_space_epsilon_constants_equal_the_proxys():
    from zcjax.proxies.epsilon import EPSILON_WEIGHTS
    from zcjax.spaces.nb_nlp import space

    assert space.EPSILON_WEIGHTS == EPSILON_WEIGHTS["nb_nlp"]
    assert space.SPACE.proxy_options["epsilon"]["weights"] == EPSILON_WEIGHTS["nb_nlp"]


def test_scoring_batch_reads_the_bundled_text_and_refuses_unknown_sources():
    from zcjax.spaces.nb_nlp import space

    config = space.SPACE.tiny_config()
    batch = space.SPACE.scoring_batch(config, dataset="bundled", size=4)
    assert batch.inputs.shape == (4, config.seq_len)
    with pytest.raises(ValueError, match="bundled text or ptb"):
        space.SPACE.scoring_batch(config, dataset="wikitext")

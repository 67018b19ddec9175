"""Random recipes as NAS-Bench-NLP generated its cells.

Reference: ``fmsnew/nas-bench-nlp-release``, ``search_space.py`` (``RecepieGenerator``) and
``search_space_examples.ipynb``, which made the benchmark's list: for every hidden-tuple size
``n`` in (1, 2, 3) and every number of intermediate vertices ``m`` in (7, 14, 21), recipes from
consecutive seeds, the valid ones kept (duplicates were possible).

One recipe from a seed (:func:`generate`, the reference's ``generate_random_recepie(seed)``,
draw for draw with NumPy's legacy generator, ``RandomState(seed)``):

1. ``m + n`` vertices are added one at a time; each draws its operation from ``linear``,
   ``blend``, ``elementwise_prod``, ``elementwise_sum`` with weights 3 : 1 : 1 : 1.

   - ``linear`` reads 2 or 3 (weights 4 : 1; fewer if fewer exist) distinct vertices drawn from
     ``x``, ``h_prev_*`` and the activations made so far, and is followed at once by an
     activation of it (``tanh``, ``sigm``, ``leaky_relu``, equally likely), so a linear vertex
     costs two of the budget;
   - ``blend`` (3 inputs) and the elementwise ops (2 inputs) read distinct vertices drawn from
     ``h_prev_*`` and every vertex made so far (never ``x``); if there are too few the op is
     redrawn.

   Vertices are named ``node_<i>`` in order.
2. ``n`` distinct vertices become the new hidden states ``h_new_0 .. h_new_{n-1}`` (renamed,
   readers updated).
3. Vertices that feed no new hidden state are removed.
4. The recipe is valid if it reads ``x`` and every ``h_prev_k``, and no new hidden state reads
   a previous one directly.

Deviation: the reference draws step 1's blend / elementwise inputs from
``list(set(base_nodes) - set('x')) + ...``, whose order depends on Python's per-process string
hashing, so its recipe for a seed changes from one process to another (unless
``PYTHONHASHSEED`` is fixed); here that list is in the order ``h_prev_0, h_prev_1, ...``. Every
other draw is the reference's.

:func:`sample` draws cells as the benchmark's list was made: ``(n, m)`` uniformly from the nine
combinations, a generator seed, and keeps valid recipes not drawn before.
"""

from __future__ import annotations

import numpy as np

from zcjax import validation
from zcjax.spaces.nb_nlp.recipe import Recipe, h_new, h_prev

MAIN_OPERATIONS = ("linear", "blend", "elementwise_prod", "elementwise_sum")
MAIN_WEIGHTS = (3.0, 1.0, 1.0, 1.0)
ACTIVATIONS = ("activation_tanh", "activation_sigm", "activation_leaky_relu")
ACTIVATION_WEIGHTS = (1.0, 1.0, 1.0)
LINEAR_CONNECTIONS = (2, 3)
LINEAR_CONNECTION_WEIGHTS = (4.0, 1.0)
#: The benchmark's grid (``search_space_examples.ipynb``).
HIDDEN_TUPLE_SIZES = (1, 2, 3)
INTERMEDIATE_VERTICES = (7, 14, 21)


def _probabilities(weights) -> np.ndarray:
    weights = np.asarray(weights, np.float64)
    return weights / weights.sum()


def generate(seed: int, hidden_tuple_size: int = 2, intermediate_vertices: int = 7
             ) -> tuple[dict, bool]:
    """``(recipe dict, valid)`` exactly as ``RecepieGenerator(n, m).generate_random_recepie(seed)``
    (see the module doc for the one deviation)."""
    seed = validation.check_int(seed, "seed", 0, 2**32 - 1)
    n = validation.check_int(hidden_tuple_size, "hidden_tuple_size", 1)
    m = validation.check_int(intermediate_vertices, "intermediate_vertices", 0)
    rng = np.random.RandomState(seed)
    prev = [h_prev(k) for k in range(n)]
    base = ["x", *prev]
    recipe: dict[str, dict] = {}
    activations: list[str] = []
    i = 0
    while i < n + m:
        op = rng.choice(MAIN_OPERATIONS, 1, p=_probabilities(MAIN_WEIGHTS))[0]
        if op == "linear":
            count = rng.choice(LINEAR_CONNECTIONS, 1,
                               p=_probabilities(LINEAR_CONNECTION_WEIGHTS))[0]
            candidates = base + activations
            count = min(count, len(candidates))
            inputs = rng.choice(candidates, count, replace=False)
            recipe[f"node_{i}"] = {"op": "linear", "input": [str(v) for v in inputs]}
            i += 1
            act = rng.choice(ACTIVATIONS, 1, p=_probabilities(ACTIVATION_WEIGHTS))[0]
            recipe[f"node_{i}"] = {"op": str(act), "input": [f"node_{i - 1}"]}
            activations.append(f"node_{i}")
            i += 1
        else:
            count = 3 if op == "blend" else 2
            candidates = prev + list(recipe)
            if count <= len(candidates):
                inputs = rng.choice(candidates, count, replace=False)
                recipe[f"node_{i}"] = {"op": str(op), "input": [str(v) for v in inputs]}
                i += 1
    # 2. the new hidden states
    chosen = rng.choice(list(recipe), n, replace=False)
    rename = {str(k): h_new(j) for j, k in enumerate(chosen)}
    for old, new in rename.items():
        recipe[new] = recipe.pop(old)
    for spec in recipe.values():
        spec["input"] = [rename.get(v, v) for v in spec["input"]]
    # 3. drop what feeds no new hidden state (breadth-first from the outputs)
    queue = [h_new(k) for k in range(n)]
    visited = set(queue)
    while queue:
        name = queue.pop(0)
        for v in recipe.get(name, {"input": []})["input"]:
            if v not in visited:
                visited.add(v)
                queue.append(v)
    recipe = {k: v for k, v in recipe.items() if k in visited}
    # 4. the reference's sanity checks
    valid = all(b in visited for b in base) and not any(
        set(recipe[h_new(k)]["input"]) & set(prev) for k in range(n))
    return recipe, valid


def sample(count: int, seed: int = 0) -> list[Recipe]:
    """``count`` distinct valid recipes drawn as the benchmark's list was made (seeded)."""
    count = validation.check_int(count, "n", 1, 1_000_000)
    rng = np.random.default_rng(validation.check_seed(seed))
    out, seen = [], set()
    while len(out) < count:
        n = int(rng.choice(HIDDEN_TUPLE_SIZES))
        m = int(rng.choice(INTERMEDIATE_VERTICES))
        recipe, valid = generate(int(rng.integers(2**32)), n, m)
        if not valid:
            continue
        cell = Recipe.from_dict(recipe)
        text = cell.to_string()
        if text not in seen:
            seen.add(text)
            out.append(cell)
    return out

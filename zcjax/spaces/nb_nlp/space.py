"""NAS-Bench-NLP as a :class:`~zcjax.spaces.base.SearchSpace` (the object the engine uses)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from zcjax import validation, workspace
from zcjax.spaces import base
from zcjax.spaces.nb_nlp import cost, data, generator, isomorphism, network
from zcjax.spaces.nb_nlp.recipe import Recipe, as_recipe

#: Where :meth:`NBNLPSpace.benchmark` looks for the user's training logs (see WORKSPACE.md).
LOGS_FOLDER = os.path.join("nb_nlp", "train_logs_single_run")


@dataclasses.dataclass(frozen=True)
class NBNLPConfig(base.NetworkConfig):
    """The NAS-Bench-NLP network (``main_one_model_train.py``'s values as defaults).

    Attributes:
      num_classes: the vocabulary ``V`` (10,000: the Penn Treebank).
      embedding_size: ``E`` (``--emsize 400``).
      hidden_size: ``H`` (``--nhid 600``).
      num_layers: ``L`` (``--nlayers 3``).
      tied: decoder weights tied to the embedding (``tied=True``).
      seq_len: ``T``, tokens per sequence (``bptt=70``).
    """

    num_classes: int = 10000
    embedding_size: int = 400
    hidden_size: int = 600
    num_layers: int = 3
    tied: bool = True
    seq_len: int = 70


#: The epsilon reference's constant pair for NAS-Bench-NLP, the value of
#: ``zcjax.proxies.epsilon.EPSILON_WEIGHTS["nb_nlp"]`` (a space does not import proxies; the
#: tests check that the two agree).
EPSILON_WEIGHTS = (1e-5, 1e-3)
_EPSILON = {"weights": EPSILON_WEIGHTS, "scheme": "recurrent"}


class NBNLPSpace(base.SearchSpace):
    """NAS-Bench-NLP (Klyuchnikov et al. 2020): recurrent cells of a 3-layer language model.

    Architectures are :class:`~zcjax.spaces.nb_nlp.recipe.Recipe` objects or recipe strings
    (the logs' ``recepie``); recipe dicts are accepted too.
    """

    name = "nb_nlp"
    description = ("NAS-Bench-NLP (Klyuchnikov et al., 2020): recurrent cells (linear, blend, "
                   "products, sums, tanh / sigmoid / leaky ReLU) of a 3-layer PTB language model")
    Config = NBNLPConfig
    proxy_options: Mapping[str, Mapping[str, Any]] = {"epsilon": _EPSILON,
                                                      "epsilon_f64": _EPSILON}
    nan_proxies: Mapping[str, str] = {
        name: ("a cell whose first output unit is constant over the batch (e.g. it does not "
               "read x, or its gates saturate) normalises 0 by 0; the reference's own run over "
               "the benchmark warns of this division on some cells")
        for name in ("epsilon", "epsilon_f64")}

    @property
    def arch_type(self) -> type:
        return Recipe

    def parse(self, text: str) -> Recipe:
        return Recipe.from_string(text)

    def format(self, arch: Any) -> str:
        return self.as_arch(arch).to_string()

    def as_arch(self, arch: Any) -> Recipe:
        if isinstance(arch, (Recipe, str, Mapping)):
            return as_recipe(arch)
        return super().as_arch(arch)

    def canonical(self, arch: Any) -> str:
        return isomorphism.canonical(self.as_arch(arch))

    def sample(self, n: int, seed: int = 0) -> list[Recipe]:
        return generator.sample(n, seed)

    def check_config(self, config: NBNLPConfig) -> NBNLPConfig:
        super().check_config(config)
        for field in ("num_classes", "embedding_size", "hidden_size", "num_layers", "seq_len"):
            validation.check_int(getattr(config, field), field, 1)
        if not isinstance(config.tied, bool):
            raise ValueError(f"tied must be True or False, got {validation.cap(repr(config.tied))}")
        return config

    def tiny_config(self) -> NBNLPConfig:
        # Two layers (a first and a tied last one, of different sizes), the vocabulary of the
        # bundled text, short sequences.
        return NBNLPConfig(embedding_size=4, hidden_size=6, num_layers=2, seq_len=5)

    def input_spec(self, config: NBNLPConfig) -> base.InputSpec:
        return base.InputSpec("tokens", (config.seq_len,), "int32")

    def build(self, arch: Any, config: NBNLPConfig) -> network.NBNLPNetwork:
        return network.NBNLPNetwork(self.as_arch(arch), vocab_size=config.num_classes,
                                    embedding_size=config.embedding_size,
                                    hidden_size=config.hidden_size,
                                    num_layers=config.num_layers, tied=config.tied)

    def example_batch(self, config: NBNLPConfig, size: int = 8, seed: int = 0):
        """Streams of the bundled text when its words fit the vocabulary (``seed`` picks the
        start position), else uniform random tokens."""
        seed = validation.check_seed(seed)
        size = validation.check_int(size, "size", 1)
        words = data.corpus()
        positions = len(words.train) // size - config.seq_len  # valid starts: 0 .. positions-1
        if words.vocab_size <= config.num_classes and positions > 0:
            return data.scoring_batch(config, size=size, start=seed % positions)
        return data.random_batch(config, size, seed)

    datasets = ("bundled", "ptb")

    def scoring_batch(self, config: NBNLPConfig, *, dataset: str = "bundled",
                      data_dir: str | None = None, split: str = "train", size: int = 64,
                      seed: int = 0):
        """``size`` token streams of ``split`` of the bundled text or the user's Penn Treebank
        (``dataset="ptb"``, read from ``data_dir``), starting at stream position ``seed`` (0:
        the reference's batch, with ``size=256``)."""
        if dataset not in self.datasets:
            raise ValueError(f"nb_nlp reads the bundled text or ptb, not {validation.cap(dataset)}")
        return data.scoring_batch(config, size=size, source=dataset, root=data_dir, split=split,
                                  start=validation.check_seed(seed))

    def param_count(self, arch: Any, config: NBNLPConfig) -> int:
        return cost.param_count(self.as_arch(arch), vocab_size=config.num_classes,
                                embedding_size=config.embedding_size,
                                hidden_size=config.hidden_size, num_layers=config.num_layers,
                                tied=config.tied)

    def flops(self, arch: Any, config: NBNLPConfig) -> int:
        return cost.macs(self.as_arch(arch), seq_len=config.seq_len,
                         vocab_size=config.num_classes, embedding_size=config.embedding_size,
                         hidden_size=config.hidden_size, num_layers=config.num_layers,
                         tied=config.tied)

    def benchmark(self, root: "str | os.PathLike | None" = None):
        """The user's NAS-Bench-NLP logs (``<workspace>/data/nb_nlp/train_logs_single_run/``),
        or ``None`` when the workspace has none."""
        from zcjax.benchmarks.nb_nlp import NBNLPBenchmark

        folder = os.path.join(workspace.data_dir(root), LOGS_FOLDER)
        return NBNLPBenchmark.from_logs(folder) if os.path.isdir(folder) else None


SPACE = base.register(NBNLPSpace())

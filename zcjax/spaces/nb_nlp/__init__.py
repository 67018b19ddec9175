"""The NAS-Bench-NLP search space (Klyuchnikov et al., 2020): recurrent cells of a language model.

``zcjax.spaces.get("nb_nlp")`` is :data:`SPACE`, the protocol object the engine uses.

- :mod:`~zcjax.spaces.nb_nlp.recipe`: the benchmark's recipe format, validated (:class:`Recipe`);
- :mod:`~zcjax.spaces.nb_nlp.isomorphism`: the canonical form (:func:`canonical`);
- :mod:`~zcjax.spaces.nb_nlp.generator`: recipes drawn as the benchmark drew them;
- :mod:`~zcjax.spaces.nb_nlp.network`: the Flax language model (:class:`NBNLPNetwork`);
- :mod:`~zcjax.spaces.nb_nlp.cost`: parameters and MACs from the recipe;
- :mod:`~zcjax.spaces.nb_nlp.data`: the scoring batch (bundled text, or the user's PTB).
"""

from zcjax.spaces.nb_nlp.recipe import EXAMPLES, OPS, Node, Recipe, as_recipe
from zcjax.spaces.nb_nlp.isomorphism import canonical
from zcjax.spaces.nb_nlp.generator import generate, sample
from zcjax.spaces.nb_nlp.network import NBNLPNetwork
from zcjax.spaces.nb_nlp.cost import macs, param_count
from zcjax.spaces.nb_nlp.data import corpus, random_batch, scoring_batch
from zcjax.spaces.nb_nlp.space import SPACE, NBNLPConfig, NBNLPSpace

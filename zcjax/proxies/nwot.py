"""NWOT (NASWOT): log-determinant of the Hamming-similarity kernel of ReLU activation codes.

Formula::

    c_{l,i} = 1[ z_{l,i} > 0 ]                   # binary code of sample i at ReLU layer l
                                                 # (z = the ReLU's input, flattened)
    K_ij    = sum_l ( c_{l,i} . c_{l,j} + (1 - c_{l,i}) . (1 - c_{l,j}) )
            = sum_l ( D_l - Hamming(c_{l,i}, c_{l,j}) )
    nwot    = log |det K|

``D_l`` is the number of units of layer ``l``. Higher is better: the more distinguishable the
activation patterns of the samples, the larger the determinant.

Paper: Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training",
ICML 2021 (arXiv:2006.04647 v2+).
Reference: ``automl/NASLib``, ``naslib/predictors/utils/pruners/measures/nwot.py``: a forward
hook on every ``nn.ReLU`` reads the ReLU's *input*, accumulates ``x x^T + (1-x)(1-x)^T`` into a
float64 matrix, and returns ``np.linalg.slogdet(K)[1]`` (the log of the absolute value; the sign
is dropped). ``bn=True``; batch of 64 in NAS-Bench-Suite-Zero. The authors' repository
(``BayesWatch/nas-without-training``, ``score_networks.py``, ``--score hook_logdet``) uses the
same kernel with batch 128 and counts only ReLUs reached by a preceding backward pass, which in
NAS-Bench-201 networks is every ReLU.

Conventions: the ReLU inputs are the ``relu_in`` intermediates of the shared forward pass (every
:class:`~zcjax.spaces.layers.ReLU`), each weighted by its presence weight (1 in static networks;
0 at the NB201 supernet's sites that the current cell lacks, which then add nothing). ``K`` is accumulated in float32 (entries are integers, exact
below 2**24 = 16.7M, far above the 0.9M of the NB201 benchmark network at batch 64) and its
log-determinant is taken in float32; on NB201 networks this agrees with the float64 reference to
about 1e-7 relative. A singular ``K`` (two samples with identical codes, e.g. a duplicated
image) gives ``-inf``, as NumPy does. Deviation: a NaN activation gives NaN, where the
reference's ``> 0`` silently reads it as an inactive unit and returns a finite score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.contract import RELU_IN
from zcjax.proxies.base import register
from zcjax.proxies.context import Context

Array = jax.Array


def hamming_kernel(activations: list[Array], weights: list[Array] | None = None) -> Array:
    """``sum_l w_l (c_l c_l^T + (1 - c_l)(1 - c_l)^T)`` over layers, ``c_l = (a_l > 0)``.

    ``weights`` (default all 1) are the sites' presence weights (see
    :meth:`~zcjax.proxies.context.Context.weighted_intermediates`): a weight-0 site adds exactly
    nothing, and neither does its NaN check.
    """
    if not activations:
        raise ValueError("the network sowed no ReLU inputs ('relu_in'); nwot needs them")
    if weights is None:
        weights = [None] * len(activations)
    n = activations[0].shape[0]
    kernel = jnp.zeros((n, n), jnp.float32)
    finite = []
    for a, w in zip(activations, weights):
        c = (a.reshape(n, -1) > 0).astype(jnp.float32)
        d = c.shape[1]
        gram = jnp.matmul(c, c.T, precision=jax.lax.Precision.HIGHEST)
        ones = jnp.sum(c, axis=1)
        # (1 - c)(1 - c)^T = D - r_i - r_j + c c^T, with r the number of active units.
        term = 2.0 * gram - ones[:, None] - ones[None, :] + d
        ok = jnp.all(jnp.isfinite(a))
        if w is not None:
            present = w != 0
            term = jnp.where(present, w.astype(jnp.float32) * term, 0.0)
            ok = ok | ~present
        kernel = kernel + term
        finite.append(ok)
    # A NaN activation compares as "not > 0"; keep it visible instead.
    return jnp.where(jnp.all(jnp.stack(finite)), kernel, jnp.nan)


@register("nwot", aliases=("naswot",), needs_labels=False, needs_gradients=False,
          data_free=False, higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          paper="Mellor et al., Neural Architecture Search without Training, ICML 2021",
          reference="automl/NASLib naslib/predictors/utils/pruners/measures/nwot.py")
def nwot(ctx: Context) -> Array:
    """``log|det K|``, ``K`` the summed Hamming-similarity kernel of the binary codes of every
    ReLU's input (BN on).

    See :mod:`zcjax.proxies.nwot`.
    """
    sites = ctx.weighted_intermediates(RELU_IN)
    return jnp.linalg.slogdet(hamming_kernel([a for a, _ in sites], [w for _, w in sites]))[1]

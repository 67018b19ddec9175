"""EPE-NAS: per-class correlations of the input Jacobians.

Formula (``K`` = number of classes = the logits' width, ``C`` = corrcoef of the Jacobian rows
as in :mod:`zcjax.proxies.jacob_cov`, ``S_c`` = the samples of the batch labelled ``c``)::

    s_c = sum_{i, j in S_c} log(|C_ij| + k),     k = 1e-5

    K <= 100:  epe_nas = sum_c |s_c|                         over the classes present
    K  > 100:  s_c    <- s_c / |S_c|
               epe_nas = sum_{c, c'} |s_c - s_c'| / (number of classes counted)

Higher is better.

Paper: Lopes, Alirezazadeh & Alexandre, "EPE-NAS: Efficient Performance Estimation Without
Training for Neural Architecture Search", ICANN 2021 (arXiv:2102.08099).
Reference: ``automl/NASLib``, ``naslib/predictors/utils/pruners/measures/epe_nas.py`` (taken
from ``VascoLopes/EPE-NAS``, ``search.py``). Its conventions, all reproduced here:

- The Jacobian is ``d sum(logits) / d x`` of the whole batch (BN in training mode), the same as
  jacob_cov's; it is the shared :attr:`Context.input_grads`.
- Samples are grouped by their integer label; each group's rows are correlated with
  ``np.corrcoef`` (rows centred and normalised over the features), so a group's matrix is the
  block of the whole batch's correlation matrix on that group. Every entry counts, the unit
  diagonal included.
- Classes absent from the batch contribute nothing.
- A class with a single sample: ``np.corrcoef`` of one row is the 0-d array ``1.0``, so for
  ``K <= 100`` it contributes ``log(1 + k)`` (about 1e-5); for ``K > 100`` the reference's
  ``len(corrs)`` raises on that 0-d array, the bare ``except`` skips the class, and it counts
  neither in the pairwise sum nor in the divisor. If no class is counted the score is 0.
- ``K`` is the width of the network's output (``y.shape[-1]``), not the number of classes seen.
- A NaN (e.g. a constant Jacobian row) propagates: the reference returns NaN (NASLib's
  predictor then writes ``-1e8``); zcjax returns NaN, never a sentinel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.proxies.base import register
from zcjax.proxies.context import Context
from zcjax.proxies.jacob_cov import normalised_rows

Array = jax.Array

#: The reference's ``k``.
K = 1e-5
#: Above this many classes the reference switches to the pairwise-difference form.
PAIRWISE_ABOVE = 100


def epe_nas_score(jacobian: Array, labels: Array, num_classes: int, k: float = K) -> Array:
    """EPE-NAS of per-sample Jacobian rows, integer ``labels`` and ``num_classes`` outputs."""
    z = normalised_rows(jacobian)
    corr = jnp.clip(jnp.matmul(z, z.T, precision=jax.lax.Precision.HIGHEST), -1.0, 1.0)
    log_corr = jnp.log(jnp.abs(corr) + k)
    member = jax.nn.one_hot(labels, num_classes, dtype=log_corr.dtype)   # (N, K)
    per_class = jnp.einsum("ic,ij,jc->c", member, log_corr, member,
                           precision=jax.lax.Precision.HIGHEST)         # s_c
    count = jnp.sum(member, axis=0)
    if num_classes <= PAIRWISE_ABOVE:
        return jnp.sum(jnp.where(count >= 1, jnp.abs(per_class), 0.0))
    counted = count >= 2
    s = per_class / jnp.maximum(count, 1.0)
    pair = counted[:, None] & counted[None, :]
    total = jnp.sum(jnp.where(pair, jnp.abs(s[:, None] - s[None, :]), 0.0))
    n_counted = jnp.sum(counted)
    # NaN anywhere in the correlations must not vanish behind the masks.
    nan = jnp.any(jnp.isnan(log_corr))
    score = jnp.where(n_counted > 0, total / jnp.maximum(n_counted, 1), 0.0)
    return jnp.where(nan, jnp.nan, score)


@register("epe_nas", needs_labels=True, needs_gradients=True, data_free=False,
          higher_is_better=True, batch_size=64, min_batch=2,
          paper="Lopes et al., EPE-NAS: Efficient Performance Estimation Without Training for "
                "Neural Architecture Search, ICANN 2021",
          reference="automl/NASLib naslib/predictors/utils/pruners/measures/epe_nas.py")
def epe_nas(ctx: Context) -> Array:
    """Sum over classes of ``|sum log(|corr| + 1e-5)|`` of the per-class input-Jacobian
    correlations (pairwise differences when there are more than 100 classes).

    See :mod:`zcjax.proxies.epe_nas`.
    """
    return epe_nas_score(ctx.input_grads, ctx.labels, ctx.logits.shape[-1])

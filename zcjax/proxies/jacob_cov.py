"""Jacob_cov: how correlated the input Jacobians of a batch are (NASWOT, first version).

Formula::

    J_i   = d (sum_k f_k(X)_i) / d x_i                  # row i: the input gradient of sample i
    C     = corrcoef(J)                                 # N x N Pearson correlation of the rows
    v     = eigenvalues(C)
    score = -sum_i ( log(v_i + k) + 1 / (v_i + k) ),     k = 1e-5

``f(X)`` are the logits of the whole batch ``X`` with batch norm in training mode, so ``J`` is
the gradient of the sum of all logits with respect to the input batch (cross-sample terms of
batch norm included), exactly what ``y.backward(torch.ones_like(y))`` leaves in ``x.grad``.
Higher is better (the score peaks when the Jacobians are uncorrelated, ``C = I``).

Paper: Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training",
arXiv:2006.04647 v1 (2020); used as a zero-cost proxy by Abdelfattah et al., ICLR 2021.
Reference: ``SamsungLabs/zero-cost-nas``, ``foresight/pruners/measures/jacob_cov.py`` (identical
to ``automl/NASLib``'s ``jacov``): ``bn=True``, one batch (64 in both benchmarks), ``np.corrcoef``
then ``np.linalg.eig`` in float64.

Conventions and deviations:

- The eigenvalues are computed as the squared singular values of the row-centred, row-normalised
  Jacobian ``Z`` (``C = Z Z^T``), which in float32 resolves small eigenvalues far better than an
  eigen-decomposition of ``C`` itself; up to float32 rounding it is the reference's spectrum.
- NaN: the reference catches the exception ``np.linalg.eig`` raises on a NaN correlation matrix
  (a constant Jacobian row) and returns NaN; NASLib's predictor then turns NaN into ``-1e8``.
  zcjax returns NaN, never a sentinel. A batch of one image also gives NaN (the reference's
  ``eig`` of a 0-d array fails).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from zcjax.proxies.base import register
from zcjax.proxies.context import Context

Array = jax.Array

#: The constant ``k`` added to every eigenvalue in the reference.
K = 1e-5


def normalised_rows(x: Array) -> Array:
    """Rows of ``x`` (flattened per sample) centred and scaled to unit norm.

    ``Z @ Z.T`` is ``np.corrcoef(x)`` (the correlation of the rows); a constant row gives NaN,
    as in NumPy.
    """
    x = x.reshape(x.shape[0], -1)
    x = x - jnp.mean(x, axis=1, keepdims=True)
    return x / jnp.linalg.norm(x, axis=1, keepdims=True)


def correlation_eigenvalues(x: Array) -> Array:
    """The eigenvalues of ``corrcoef(x)`` (rows = samples), ascending, via an SVD."""
    z = normalised_rows(x)
    s = jnp.linalg.svd(z, compute_uv=False)
    eig = jnp.sort(jnp.square(s))
    missing = z.shape[0] - eig.shape[0]  # more samples than features: zero eigenvalues
    if missing > 0:
        eig = jnp.concatenate([jnp.zeros((missing,), eig.dtype), eig])
    # An SVD of a NaN matrix is not guaranteed to return NaN on every backend.
    return jnp.where(jnp.all(jnp.isfinite(z)), eig, jnp.nan)


def jacob_cov_score(jacobian: Array, k: float = K) -> Array:
    """``-sum(log(v + k) + 1 / (v + k))`` over the eigenvalues ``v`` of corrcoef(jacobian)."""
    if jacobian.shape[0] < 2:
        return jnp.array(jnp.nan, jnp.float32)
    v = correlation_eigenvalues(jacobian)
    return -jnp.sum(jnp.log(v + k) + 1.0 / (v + k))


@register("jacob_cov", aliases=("jacov",), needs_labels=False, needs_gradients=True,
          data_free=False, higher_is_better=True, inputs=("images", "tokens"), batch_size=64,
          min_batch=2,
          paper="Mellor et al., Neural Architecture Search without Training, "
                "arXiv:2006.04647 v1, 2020",
          reference="SamsungLabs/zero-cost-nas foresight/pruners/measures/jacob_cov.py")
def jacob_cov(ctx: Context) -> Array:
    """``-sum(log(v + 1e-5) + 1/(v + 1e-5))``, ``v`` the eigenvalues of the correlation of the
    per-sample input gradients of the summed logits (BN on).

    See :mod:`zcjax.proxies.jacob_cov`.
    """
    return jacob_cov_score(ctx.input_grads)

"""Zero-cost proxies: pure functions ``proxy(apply_fn, variables, batch, key) -> scalar``.

Importing this package registers every proxy; :func:`get` and :func:`names` query the registry.
"""

from zcjax.proxies.base import ProxyInfo, REGISTRY, get, names, register
from zcjax.proxies.context import Context

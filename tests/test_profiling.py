"""zcjax.profiling: time by named scope, read from JAX's profiler and the compiled HLO."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from zcjax import profiling
from zcjax.profiling import OTHER, Profile


@pytest.mark.parametrize("op_name, scope", [
    ("jit(one)/proxy.snip/pass.param_grads/transpose(jvp())/conv", "pass.param_grads"),
    ("jit(one)/proxy.snip/mul", "proxy.snip"),
    ("jit(one)/proxy.zen/pass.zen_passes/proxy.other/add", "pass.zen_passes"),
    ("jit(one)/pass.architecture_variables/select_n", "pass.architecture_variables"),
    ("jit(one)/transpose", OTHER),
    ("", OTHER),
])
def test_scope_of(op_name, scope):
    assert profiling.scope_of(op_name) == scope


def _two_scopes(x, w):
    with jax.named_scope(profiling.proxy_scope("heavy")):
        heavy = jnp.sum(jnp.tanh(x @ w @ w @ w))
    with jax.named_scope(profiling.pass_scope("light")):
        light = jax.lax.cond(heavy > 0, lambda v: jnp.sum(v), lambda v: -jnp.sum(v), x[0])
    return heavy + light


def _compiled():
    x = jnp.ones((256, 256)) / 256
    return jax.jit(_two_scopes).lower(x, x).compile(), (x, x)


def test_instruction_scopes_of_a_compiled_program():
    compiled, _ = _compiled()
    scopes = profiling.instruction_scopes(compiled.as_text())
    assert "proxy.heavy" in scopes.values() and "pass.light" in scopes.values()
    assert None in scopes.values()  # the conditional: its branches are traced on their own
    assert profiling.module_name(compiled.as_text()).startswith("jit_")


def test_profile_charges_time_to_the_scopes():
    compiled, args = _compiled()
    profile = profiling.profile_compiled(compiled, args, repeats=3)
    assert profile.by_scope["proxy.heavy"] > 0
    assert profile.by_scope["proxy.heavy"] > profile.by_scope.get("pass.light", 0.0)
    assert set(profile.by_scope) <= {"proxy.heavy", "pass.light", OTHER}
    assert profile.wall_s > 0 and profile.traced_s > 0


def test_instruction_seconds_sum_the_modules_instructions_only():
    events = [
        {"ph": "X", "dur": 2e6, "args": {"hlo_module": "jit_a", "hlo_op": "dot"}},
        {"ph": "X", "dur": 1e6, "args": {"hlo_module": "jit_a", "hlo_op": "dot"}},
        {"ph": "X", "dur": 5e6, "args": {"hlo_module": "jit_b", "hlo_op": "dot"}},
        {"ph": "X", "dur": 7e6, "name": "PjitFunction"},
        {"ph": "i", "args": {"hlo_module": "jit_a", "hlo_op": "fusion"}},
    ]
    assert profiling.instruction_seconds(events, "jit_a") == {"dot": 3.0}


def test_seconds_by_scope_skips_containers_and_keeps_unknown_instructions():
    text = "\n".join([
        "HloModule jit_a, is_scheduled=true",
        '  %dot.1 = f32[2]{0} dot(%p, %q), metadata={op_name="jit(a)/proxy.x/dot"}',
        '  %cond = (f32[]) conditional(%i, %p), branch_computations={%b0}, '
        'metadata={op_name="jit(a)/proxy.x/cond"}',
        "  %copy.2 = f32[2]{0} copy(%dot.1)",
    ])
    got = profiling.seconds_by_scope(text, {"dot.1": 1.0, "cond": 9.0, "copy.2": 0.5,
                                            "gone": 0.25})
    assert got == {"proxy.x": 1.0, OTHER: 0.75}


def test_module_name_needs_hlo_text():
    with pytest.raises(ValueError, match="HloModule"):
        profiling.module_name("not hlo")


def test_profiles_add_and_tabulate():
    a = Profile(1.0, {"pass.forward": 0.6, "proxy.snip": 0.2})
    b = Profile(0.5, {"eager.grasp": 0.5})
    both = a.plus(b)
    assert both.wall_s == 1.5
    assert both.by_scope == {"pass.forward": 0.6, "proxy.snip": 0.2, "eager.grasp": 0.5}
    text = profiling.table({"cell 1": both, "cell 2": a}, "engine")
    lines = text.splitlines()
    assert lines[0] == "| engine | cell 1 | cell 2 |"
    assert lines[2].startswith("| pass.forward | 0.600 (46%) | 0.600 (75%) |")
    assert "| eager.grasp | 0.500 (38%) |  |" in text  # absent from cell 2: an empty cell
    assert lines[-1] == "| (wall time) | 1.500 | 1.000 |"
    with pytest.raises(ValueError):
        profiling.table({})

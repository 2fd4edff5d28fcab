"""Brax's MuJoCo-style locomotion tasks behind entrolab's environment protocol (optional extra).

`make("brax:hopper")` (also `brax:walker2d`, `brax:halfcheetah`, `brax:ant`, any name
`brax.envs.get_environment` knows) wraps a brax (>= 0.14) environment so that entrolab's learners,
evaluators and probes run on it unchanged: `pip install 'entrolab[brax]'`. Ahmed et al.'s
continuous experiments (the landscape study) ran REINFORCE on Hopper; this is how entrolab reaches it.

What the wrapper adds, and its departures from brax's own wrappers:

- The protocol's state is `BraxState`: `x` = (q, qd) of the physics pipeline (the base class checks
  it for divergence) and `brax` = the whole brax state, which is carried unchanged. Rebuilding the
  pipeline state from (q, qd) reproduces the next step only for the generalized backend, so the
  whole pytree is kept.
- Reward = -cost with cost = -(brax's reward). brax computes it from Python floats fixed when the env
  is built (`forward_reward_weight`, `ctrl_cost_weight`, `healthy_reward`), so they are static
  options of `make` here (a sweep over them is a recompile, not a vmap); the base class caps the
  per-step cost at `cost_cap` (1e3: above any reachable cost, so no cap in practice).
- Episodes: brax's own `done` (Hopper: torso too low or too tilted, a state out of range) ends an
  episode as `terminated`; the time limit `max_steps_in_episode` (1,000, as brax's EpisodeWrapper
  and Gymnasium's Hopper-v5) truncates it. brax's AutoResetWrapper restarts every episode from the
  same stored first state; here every reset draws a fresh key (brax's `reset_noise_scale`
  perturbation of the initial pose), as Gymnasium does.
- The action space is [-1, 1]^m (brax's actuators take the clipped action; Hopper's gear is 200).
- brax's `step` takes no key: actuation and observation noise are the base class's params, as for
  every entrolab env. brax's Hopper updates its state's `metrics` dict in place when called
  outside `jit`; the wrapper copies the dict first.
- brax prints "Failed to import warp ..." to stdout on import (mujoco's mjx); the import here
  redirects stdout so that CLI output stays clean.

Measured on the 2-core CPU (docs/benchmarks.md): Hopper with 64 envs runs about 11k steps/s on
the generalized backend (the authors' physics is MuJoCo's; brax's default), 25k on positional and
64k on spring, with auto-reset; compiling takes 10-35 s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any

import jax.numpy as jnp
from flax import struct

from entrolab.envs.core import EnvParams, EnvState, NaturalEnds
from entrolab.envs.spaces import Box

INSTALL = "brax environments need the optional extra: pip install 'entrolab[brax]'"


def _brax_envs():
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # mjx prints warp import failures on stdout
            from brax import envs
    except ImportError as err:
        raise ValueError(INSTALL) from err
    return envs


@struct.dataclass
class BraxState(EnvState):
    brax: Any = None  # the brax State (pipeline_state, obs, reward, done, metrics, info)


@struct.dataclass
class BraxParams(EnvParams):
    max_steps_in_episode: int = 1000
    divergence_bound: float = 1e4
    cost_cap: float = 1e3


class BraxEnv(NaturalEnds):
    """A brax environment (module docstring). Static options: `backend` and the task's own
    constructor keywords (e.g. Hopper's `forward_reward_weight`, `ctrl_cost_weight`,
    `healthy_reward`, `terminate_when_unhealthy`, `reset_noise_scale`, `n_frames`)."""

    def __init__(self, task: str = "hopper", backend: str = "generalized", **options: Any):
        envs = _brax_envs()
        if task not in envs._envs:
            raise ValueError(f"unknown brax environment {task!r}; known: {sorted(envs._envs)}")
        try:
            with warnings_off():
                self.brax_env = envs.get_environment(task, backend=backend, **options)
        except TypeError as err:
            raise ValueError(f"brax:{task}: {err}") from None
        self.task, self.backend, self.options = task, backend, dict(options)
        self.name = f"brax:{task}"

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def _state(self, b, time, num_diverged) -> BraxState:
        ps = b.pipeline_state
        x = jnp.concatenate([jnp.ravel(ps.q), jnp.ravel(ps.qd)])
        return BraxState(x=x, time=time, num_diverged=num_diverged, brax=b)

    def reset_env(self, key, params):
        b = self.brax_env.reset(key)
        return b.obs, self._state(b, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        b = state.brax
        b = b.replace(metrics=dict(b.metrics), info=dict(b.info))  # brax mutates these outside jit
        nb = self.brax_env.step(b, action.astype(b.obs.dtype))
        info = {"terminal": nb.done > 0, **{f"brax_{k}": v for k, v in nb.metrics.items()}}
        return self._state(nb, state.time + 1, state.num_diverged), -nb.reward, info

    def observe(self, state, params):
        return state.brax.obs

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (int(self.brax_env.action_size),))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (int(self.brax_env.observation_size),))

    def __repr__(self) -> str:
        return f"BraxEnv({self.task!r}, backend={self.backend!r})"


@contextlib.contextmanager
def warnings_off():
    """brax's MJCF loader warns that brax is no longer actively maintained (a UserWarning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def make_brax(task: str, **overrides: Any) -> tuple[BraxEnv, BraxParams]:
    """`make("brax:TASK", backend=..., <task keyword>=..., <param>=...)`: static options are
    `backend` and the task constructor's keywords; the rest must be `BraxParams` fields."""
    import inspect

    envs = _brax_envs()
    if task not in envs._envs:
        raise ValueError(f"unknown brax environment {task!r}; known: {sorted(envs._envs)}")
    param_names = {f.name for f in dataclasses.fields(BraxParams)}
    ctor = set(inspect.signature(envs._envs[task].__init__).parameters) - {"self", "kwargs"}
    static = {k: v for k, v in overrides.items() if k in ctor | {"backend"}}
    rest = {k: v for k, v in overrides.items() if k not in static}
    unknown = sorted(set(rest) - param_names)
    if unknown:
        raise ValueError(f"brax:{task}: unknown override(s) {unknown}; static options: {sorted(ctor | {'backend'})}; "
                         f"params: {sorted(param_names)}")
    env = BraxEnv(task, **static)
    return env, env.default_params.replace(**rest)

"""Soft versus plain Q over the action space of a trained SAC agent (MaxEnt misleads, item 5).

A SAC agent's soft critic estimates Q_soft(s, a) = r + gamma E[V_soft(s')],
whose values include the entropy the policy will collect later; the plain
critic (trained beside it with `SACConfig(plain_critic=True)`, and always under
AdaEnt) estimates the return of the same policy without entropy. Where the
entropy bonus misleads, the two rank the actions of a state differently: the
soft Q rewards actions that lead to states with many acceptable actions.

    lp = load_policy("runs/x/checkpoints/alpha=0.2_seed=0")
    land = Landscape.from_checkpoint(lp)
    table = land.slices(obs, num=101)          # 1-D slices through the mean action
    grid = land.heatmap(obs[0], dims=(0, 1))   # a 2-D slice
    # figures from the tables: entrolab.report.qlandscape.slices_figure / heatmap_figure

Slices pass through the policy's deterministic action tanh(mean(s)): along
action dimension d the others stay at their deterministic values. The density
drawn on top is the exact marginal density of the squashed Gaussian policy
along those dimensions (the policy is a product over dimensions, so the
marginal of a_d is the one-dimensional squashed normal; of (a_i, a_j) the
product of two).

Each Q is shown shifted by its maximum over the slice (Q - max Q <= 0): the
soft and plain Q differ by an action-independent offset and by the entropy
still to come, and only their shapes, not their levels, decide the policy.
`similarity` is AdaEnt's statistic over the slice: the cosine of the
min-shifted vectors (`entrolab.agents.sac.losses.shifted_cosine_similarity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from entrolab.agents.networks import gaussian_log_prob, tanh_log_det_jacobian
from entrolab.agents.sac.losses import shifted_cosine_similarity
from entrolab.agents.sac.networks import SquashedGaussianPolicy, TwinQ
from entrolab.agents.spaces import flat_bounded_spaces, to_env_action

EDGE = 1e-3  # grids stop this far inside (-1, 1), where the squashed density is finite


def marginal_log_density(a: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log-density of a = tanh(u), u ~ N(mean, exp(log_std)^2), elementwise (one dimension each)."""
    u = jnp.arctanh(a)
    return gaussian_log_prob(u[..., None], mean[..., None], log_std[..., None]) - tanh_log_det_jacobian(u[..., None])


@dataclass(frozen=True)
class Landscape:
    """A trained SAC actor with its soft and (optionally) plain twin critics."""

    policy: SquashedGaussianPolicy
    critic: TwinQ
    actor: dict
    soft: dict
    plain: dict | None = None

    @classmethod
    def from_checkpoint(cls, loaded: Any) -> Landscape:
        """From a `entrolab.checkpoint.LoadedPolicy` of a SAC run (its manifest names the critics)."""
        if not isinstance(loaded.policy, SquashedGaussianPolicy) or "critic" not in loaded.arrays:
            raise ValueError("a Q landscape needs a SAC checkpoint (a SquashedGaussianPolicy with its critic)")
        cfg = loaded.manifest.get("config", {})
        hidden = cfg.get("critic_hidden_sizes") or cfg.get("hidden_sizes") or loaded.policy.hidden_sizes
        critic = TwinQ(tuple(hidden), cfg.get("activation", loaded.policy.activation))
        return cls(loaded.policy, critic, loaded.params, loaded.arrays["critic"], loaded.arrays.get("plain_critic"))

    # ---- raw values -----------------------------------------------------------
    def values(self, obs: jax.Array, actions: jax.Array) -> dict[str, jax.Array]:
        """min-twin soft and plain Q at (obs, each action); obs (d,), actions (G, m) -> (G,)."""
        obs_g = jnp.broadcast_to(obs, (actions.shape[0], obs.shape[-1]))
        out = {"soft": self.critic.min(self.soft, obs_g, actions)}
        out["plain"] = (self.critic.min(self.plain, obs_g, actions) if self.plain is not None
                        else jnp.full(actions.shape[:1], jnp.nan))
        return out

    def _dims(self, dims) -> list[int]:
        m = self.policy.action_dim
        dims = list(range(m)) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < m]
        if bad:
            raise ValueError(f"action dimensions {bad} out of range for an action of dimension {m}")
        return dims

    # ---- 1-D slices -------------------------------------------------------------
    def slices(self, obs, num: int = 101, dims=None):
        """A tidy table (pandas) of 1-D slices through the deterministic action of each state.

        obs: (S, d) or (d,). Columns: state, dim, action (the varied coordinate), soft, plain
        (each minus its maximum over the slice), soft_raw, plain_raw, density (marginal),
        mean_action, similarity."""
        import pandas as pd

        if int(num) < 2:
            raise ValueError(f"a slice needs num >= 2 points, got {num}")
        obs = jnp.atleast_2d(jnp.asarray(obs, jnp.float32))
        if obs.shape[-1] != self.policy.obs_dim:
            raise ValueError(f"observations of dimension {obs.shape[-1]}, the policy takes {self.policy.obs_dim}")
        grid = jnp.linspace(-1 + EDGE, 1 - EDGE, int(num))
        fn = jax.jit(self._slice)
        frames = []
        for s in range(obs.shape[0]):
            for d in self._dims(dims):
                r = jax.device_get(fn(obs[s], grid, d))
                frames.append(pd.DataFrame({
                    "state": s, "dim": d, "action": np.asarray(grid),
                    "soft": r["soft"] - np.max(r["soft"]), "plain": r["plain"] - np.max(r["plain"]),
                    "soft_raw": r["soft"], "plain_raw": r["plain"], "density": np.exp(r["log_density"]),
                    "mean_action": float(r["mean_action"]), "similarity": float(r["similarity"]),
                }))
        return pd.concat(frames, ignore_index=True)

    def _slice(self, obs, grid, d):
        mean, log_std = self.policy.apply(self.actor, obs)
        base = jnp.tanh(mean)
        actions = jnp.broadcast_to(base, (grid.shape[0], base.shape[0]))
        actions = actions.at[:, d].set(grid)
        q = self.values(obs, actions)
        return {**q, "log_density": marginal_log_density(grid, mean[d], log_std[d]),
                "mean_action": base[d], "similarity": shifted_cosine_similarity(q["soft"], q["plain"])}

    # ---- 2-D slices -------------------------------------------------------------
    def heatmap(self, obs, dims=(0, 1), num: int = 61) -> dict[str, np.ndarray]:
        """Soft Q, plain Q (each minus its max) and the marginal density on a num x num grid
        of action dimensions `dims`, the others at the deterministic action.
        Returns numpy arrays: x, y (num,), soft, plain, density (num, num) indexed [y, x]."""
        i, j = self._dims(dims)
        if i == j:
            raise ValueError(f"a heat map needs two different action dimensions, got {dims}")
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        grid = jnp.linspace(-1 + EDGE, 1 - EDGE, int(num))
        mean, log_std = self.policy.apply(self.actor, obs)
        base = jnp.tanh(mean)
        yy, xx = jnp.meshgrid(grid, grid, indexing="ij")
        actions = jnp.broadcast_to(base, (xx.size, base.shape[0])).at[:, i].set(xx.ravel()).at[:, j].set(yy.ravel())
        q = jax.device_get(jax.jit(self.values)(obs, actions))
        log_density = marginal_log_density(xx, mean[i], log_std[i]) + marginal_log_density(yy, mean[j], log_std[j])
        shape = xx.shape
        soft, plain = q["soft"].reshape(shape), q["plain"].reshape(shape)
        return {"x": np.asarray(grid), "y": np.asarray(grid), "dims": (i, j),
                "soft": soft - soft.max(), "plain": plain - np.nanmax(plain) if self.plain is not None else plain,
                "density": np.exp(np.asarray(log_density)), "mean_action": np.asarray(base)[[i, j]],
                "similarity": float(shifted_cosine_similarity(jnp.asarray(soft.ravel()), jnp.asarray(plain.ravel())))}


def landscape_states(policy, params, env, env_params, key, num: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` observations of the policy's first greedy episode at evenly spaced times of its first
    half (the first is the reset), and those times. Works on any env of the protocol (gymnax's too)."""
    _, _, low, high = flat_bounded_spaces(env, env_params, "a landscape")
    steps = int(getattr(env_params, "max_steps_in_episode", 200))
    k_reset, k_run = jax.random.split(key)

    @jax.jit
    def episode(k_reset, k_run):
        obs, state = env.reset(k_reset, env_params)

        def body(carry, k):
            obs, state = carry
            action = to_env_action(policy.deterministic_action(params, obs), low, high)
            next_obs, state, _, terminated, truncated, _ = env.step(k, state, action, env_params)
            return (next_obs, state), (obs, terminated | truncated)

        return jax.lax.scan(body, (obs, state), jax.random.split(k_run, steps))[1]

    obs, done = jax.device_get(episode(k_reset, k_run))
    ends = np.flatnonzero(np.asarray(done))
    length = int(ends[0]) + 1 if ends.size else steps
    times = np.unique(np.linspace(0, (length - 1) // 2, num).round().astype(int))
    return np.asarray(obs)[times], times

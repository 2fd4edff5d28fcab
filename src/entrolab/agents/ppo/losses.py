"""GAE and the clipped PPO loss, as free functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(rewards, values, next_values, terminated, done, gamma, lam):
    """Generalised advantage estimation with correct time limits.

    Shapes: all (T, ...) with time first. `next_values[t]` is the value of the
    observation that follows step t *in the same episode*: the value of the
    final observation when the episode ended at t (truncated or terminated),
    else the value of the next step's observation. Termination cuts the
    bootstrap (delta = r - V); truncation keeps it (delta = r + gamma V(final) - V);
    either stops the advantage from flowing across the episode boundary.

    Returns (advantages, returns = advantages + values).
    """
    not_term = 1.0 - terminated.astype(values.dtype)
    not_done = 1.0 - done.astype(values.dtype)
    deltas = rewards + gamma * not_term * next_values - values

    def body(carry, x):
        delta, nd = x
        adv = delta + gamma * lam * nd * carry
        return adv, adv

    _, adv = jax.lax.scan(body, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True)
    return adv, adv + values


def clipped_surrogate(log_ratio, advantages, clip_eps):
    """PPO's policy loss -E[min(r A, clip(r, 1 +- eps) A)] and diagnostics."""
    ratio = jnp.exp(log_ratio)
    loss = -jnp.mean(jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages))
    approx_kl = jnp.mean((ratio - 1.0) - log_ratio)  # Schulman's k3 estimator of KL(old || new)
    clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
    return loss, approx_kl, clip_fraction


def explained_variance(predictions, targets):
    """1 - Var[targets - predictions] / Var[targets] (nan if targets are constant)."""
    var = jnp.var(targets)
    return jnp.where(var > 0, 1.0 - jnp.var(targets - predictions) / jnp.where(var > 0, var, 1.0), jnp.nan)

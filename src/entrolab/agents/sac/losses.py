"""SAC's and SAC-AdaEnt's losses, as free functions of arrays.

Notation: s, a, r, s' from the buffer; a' ~ pi(. | s') and a_pi ~ pi(. | s) by
reparameterisation; Q_1, Q_2 the twin critics and Q'_1, Q'_2 their Polyak
targets; `alpha` the entropy coefficient.

- soft target:   y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a' | s'))
- plain target:  y = r + gamma (1 - terminated) min_i Q'plain_i(s', a')   (AdaEnt; no entropy)
- critic loss:   sum_i mean_batch (Q_i(s, a) - y)^2
- actor loss:    mean_batch (alpha log pi(a_pi | s) - Q_chosen(s, a_pi))
- alpha loss:    -mean_batch log_alpha (log pi(a_pi | s) + target_entropy)   (log pi held fixed)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def td_target(reward, terminated, next_value, gamma):
    """r + gamma (1 - terminated) next_value; shapes (batch,).

    `next_value` is the value of the observation the step reached (the final
    observation of an episode that ended): a truncated step bootstraps from
    it, a terminated one does not."""
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * next_value


def soft_td_target(reward, terminated, next_q, next_log_prob, alpha, gamma):
    """The soft Bellman target: `td_target` of min Q'(s', a') - alpha log pi(a' | s')."""
    return td_target(reward, terminated, next_q - alpha * next_log_prob, gamma)


def critic_loss(q, target):
    """sum over members of mean squared TD error; q (members, batch), target (batch,).

    One Adam over the stacked members is the same as one Adam per member with
    loss mean (Q_i - y)^2 (Adam is elementwise): the maxent-mislead convention."""
    return jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))


def actor_loss(log_prob, q, alpha):
    """mean(alpha log pi(a | s) - Q(s, a)) over the batch (q carries the gradient)."""
    return jnp.mean(alpha * log_prob - q)


def alpha_loss(log_alpha, log_prob, target_entropy):
    """-mean(log_alpha (log pi + target_entropy)): its gradient raises alpha when the
    entropy estimate -log pi is below the target, lowers it when above."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


def polyak(target, online, tau):
    """target <- tau online + (1 - tau) target, leaf by leaf."""
    return jax.tree.map(lambda t, o: tau * o + (1.0 - tau) * t, target, online)


def shifted_cosine_similarity(x, y, eps: float = 1e-8):
    """Cosine similarity of x - min(x) and y - min(y) along the last axis.

    Both shifted vectors are >= 0 elementwise, so the result is in [0, 1]: a
    threshold <= 0 can never be undercut. A constant vector (zero after the
    shift) has similarity 0 with anything (eps guards the division, as
    torch.nn.functional.cosine_similarity does)."""
    x = x - jnp.min(x, axis=-1, keepdims=True)
    y = y - jnp.min(y, axis=-1, keepdims=True)
    norms = jnp.sqrt(jnp.sum(x * x, axis=-1) * jnp.sum(y * y, axis=-1))
    return jnp.sum(x * y, axis=-1) / jnp.maximum(norms, eps)


def adaent_switch(q_soft_samples, q_plain_samples, threshold):
    """AdaEnt's per-state choice. Inputs (batch, K): the min-twin soft and plain Q of
    K actions sampled from the policy at each state. Returns (switch, similarity),
    each (batch,): switch where the shifted cosine similarity is below `threshold`
    (the soft Q ranks the actions unlike the plain Q, so the entropy term misleads)."""
    similarity = shifted_cosine_similarity(q_soft_samples, q_plain_samples)
    return similarity < threshold, similarity


def choose_q(q_soft, q_plain, switch):
    """The Q the actor maximises at each state: plain where `switch`, else soft."""
    return jnp.where(switch, q_plain, q_soft)

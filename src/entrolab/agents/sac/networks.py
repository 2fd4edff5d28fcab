"""SAC's networks: the squashed Gaussian actor and twin Q critics.

The actor is one MLP from the observation to (mean, log_std) of a Gaussian
over the pre-tanh action u; the action is a = tanh(u) in (-1, 1)^m. Its
log-density includes the change of variables (Haarnoja et al. 2018, eq. 21),

    log pi(a | s) = log N(u; mean(s), diag(std(s))^2) - sum_i log(1 - tanh(u_i)^2),

computed stably from u (`tanh_log_det_jacobian`), not as log(1 - a^2 + eps).

The log-std is state dependent and hard-clipped to [log_std_min, log_std_max]
(default [-20, 2]: Stable-Baselines3 and tianshou, the library of the
maxent-mislead code). The clip bounds the std in [2e-9, 7.4]; a tanh-rescaled
log-std into [-5, 2] (CleanRL) is smoother but changes the parameterisation
and so the entropy a given network output means; the clip is the convention
of the code this replicates. The clip has zero gradient outside the range,
which matters only if the network is pushed there.

Layers act on one example (leading axes broadcast). Initialisation is the
package's `MLP` convention (orthogonal, zero bias; output scale 0.01 for the
actor, so the initial policy is close to u ~ N(0, 1) in every state).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from entrolab.agents.networks import MLP, gaussian_entropy, gaussian_log_prob, tanh_log_det_jacobian


@dataclass(frozen=True)
class SquashedGaussianPolicy:
    """a = tanh(u), u ~ N(mean(s), diag(exp(log_std(s)))^2).

    Same interface as `entrolab.agents.policy.GaussianPolicy` (so that
    `entrolab.agents.evaluate.episode_returns` works): `apply(params, obs)` gives
    the pre-tanh (mean, log_std); `bound` is tanh; `deterministic_action` is
    tanh(mean). No observation normalisation (`normalize` is the identity):
    SAC's replay buffer holds raw observations.
    """

    obs_dim: int
    action_dim: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    action_bounding = "tanh"
    normalize_observations = False

    @property
    def net(self) -> MLP:
        return MLP(tuple(self.hidden_sizes), 2 * self.action_dim, self.activation, output_scale=0.01)

    def init(self, key: jax.Array) -> dict:
        """Parameters: {"net": the MLP's params}."""
        return {"net": self.net.init(key, jnp.zeros((self.obs_dim,)))["params"]}

    def apply(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the pre-tanh Gaussian, each shape (..., action_dim)."""
        out = self.net.apply({"params": params["net"]}, obs)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)

    def apply_normalized(self, params: dict, nobs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.apply(params, nobs)

    def normalize(self, params: dict, obs: jax.Array) -> jax.Array:
        return obs

    # ---- the distribution -------------------------------------------------
    def bound(self, u: jax.Array) -> jax.Array:
        return jnp.tanh(u)

    def sample(self, key, mean, log_std) -> tuple[jax.Array, jax.Array]:
        """(u, log pi(tanh(u))) by reparameterisation; the action is `bound(u)`."""
        u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        return u, self.log_prob(u, mean, log_std)

    def log_prob(self, u, mean, log_std) -> jax.Array:
        """Log-density of the squashed action tanh(u), from the pre-tanh u."""
        return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)

    def entropy(self, log_std) -> jax.Array:
        """Entropy of the pre-tanh Gaussian (closed form; the squashed distribution's
        entropy is E[-log pi(a)], estimated from samples in the training metrics)."""
        return gaussian_entropy(log_std)

    def deterministic_action(self, params: dict, obs: jax.Array) -> jax.Array:
        mean, _ = self.apply(params, obs)
        return jnp.tanh(mean)

    def stochastic_action(self, key, params: dict, obs: jax.Array) -> jax.Array:
        mean, log_std = self.apply(params, obs)
        return jnp.tanh(self.sample(key, mean, log_std)[0])


@dataclass(frozen=True)
class TwinQ:
    """Two independent Q(s, a) MLPs on concat(obs, action), parameters stacked on axis 0.

    The two members are initialised one after the other and stacked (not a
    vmapped init: a batched orthogonal initialiser's QR deadlocked on a 2-core
    CPU, see `PPO.init_batch`), and applied with a vmap over that axis.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    num_members: int = 2

    @property
    def net(self) -> MLP:
        return MLP(tuple(self.hidden_sizes), 1, self.activation)

    def init(self, key: jax.Array, obs_dim: int, action_dim: int) -> dict:
        dummy = jnp.zeros((obs_dim + action_dim,))
        members = [self.net.init(k, dummy)["params"] for k in jax.random.split(key, self.num_members)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *members)

    def apply(self, params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        """Q of every member, shape (num_members, *batch) for obs (*batch, d), action (*batch, m)."""
        x = jnp.concatenate([obs, action], axis=-1)
        return jax.vmap(lambda p: self.net.apply({"params": p}, x)[..., 0])(params)

    def min(self, params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        """The clipped double-Q estimate min_i Q_i(s, a), shape (*batch)."""
        return jnp.min(self.apply(params, obs, action), axis=0)

"""The Gaussian policy of the main study, with its action-bounding scheme; a categorical policy
for discrete actions (`CategoricalPolicy`, the MiniGrid room).

`policy.apply(params, obs) -> (mean, log_std)` is pure in `params` and `obs`
(raw observations; the running normalisation is part of `params`), so that
analysis code can differentiate through it.

Action bounding (`action_bounding`):
- "clip" (default; as Stable-Baselines3 PPO and the main study): the action
  u ~ N(mean, std^2) is sampled unbounded and clipped to [-1, 1] by the
  environment. The log-probability is that of the unclipped Gaussian sample
  (the clip is treated as part of the environment), and the entropy is the
  Gaussian's.
- "tanh": a = tanh(u). The log-probability includes the change of variables
  -sum log(1 - tanh(u)^2); the entropy bonus is the Gaussian's entropy of u
  (the squashed distribution's has no closed form), so under "tanh" the bonus
  rewards spreading u, which tanh then saturates: how actions are bounded
  changes what the entropy bonus does to the mean network.

Under both schemes the env reward of a bounded action is bounded while the
bonus (the pre-bounding Gaussian's entropy) grows as log std, so with a large
enough coefficient the regularised objective has no maximum: the std grows for
as long as the bonus is on, and the mean may leave [-1, 1]
(tests/test_ppo_probes.py shows it on a probe). The main study's schedule
decays the coefficient to 0, which ends the growth.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from entrolab.agents.networks import MLP, gaussian_entropy, gaussian_log_prob, tanh_log_det_jacobian
from entrolab.agents.running_stats import normalize

BOUNDINGS = ("clip", "tanh")


class GaussianActions:
    """The Gaussian action distribution with its bounding, for any policy class with
    `apply(params, obs) -> (mean, log_std)` and an `action_bounding` field ("clip" or "tanh"):
    `GaussianPolicy` and the imported SB3 policies (`entrolab.agents.imported`) share it."""

    action_bounding: str

    def apply(self, params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the pre-bounding Gaussian for a raw observation."""
        return self.apply_normalized(params, self.normalize(params, obs))

    def bound(self, u: jax.Array) -> jax.Array:
        """The action the environment receives (in [-1, 1]^m) for a pre-bounding sample u."""
        return jnp.clip(u, -1.0, 1.0) if self.action_bounding == "clip" else jnp.tanh(u)

    def sample(self, key, mean, log_std) -> tuple[jax.Array, jax.Array]:
        """(u, log_prob(u)); the env action is `bound(u)`."""
        u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        return u, self.log_prob(u, mean, log_std)

    def log_prob(self, u, mean, log_std) -> jax.Array:
        """The pre-clip Gaussian's log-density ("clip": the clip is part of the env), or that of tanh(u)."""
        logp = gaussian_log_prob(u, mean, log_std)
        if self.action_bounding == "tanh":
            logp = logp - tanh_log_det_jacobian(u)
        return logp

    def entropy(self, log_std) -> jax.Array:
        """Entropy of the pre-bounding Gaussian (the quantity the bonus rewards)."""
        return gaussian_entropy(log_std)

    def distribution_entropy(self, mean, log_std) -> jax.Array:
        """`entropy` from the distribution's parameters as `apply` returns them (the policies' shared
        surface)."""
        return self.entropy(jnp.broadcast_to(log_std, jnp.shape(mean)))

    def deterministic_action(self, params: dict, obs: jax.Array) -> jax.Array:
        mean, _ = self.apply(params, obs)
        return self.bound(mean)

    def stochastic_action(self, key, params: dict, obs: jax.Array) -> jax.Array:
        mean, log_std = self.apply(params, obs)
        return self.bound(self.sample(key, mean, log_std)[0])


def _init_net(net: MLP, obs_dim: int, key: jax.Array) -> dict:
    """{"mean_net": net's initial parameters, "obs_norm": the identity normalisation}."""
    return {"mean_net": net.init(key, jnp.zeros((obs_dim,)))["params"],
            "obs_norm": {"mean": jnp.zeros((obs_dim,)), "var": jnp.ones((obs_dim,))}}


@dataclass(frozen=True)
class GaussianPolicy(GaussianActions):
    obs_dim: int
    action_dim: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    action_bounding: str = "clip"
    normalize_observations: bool = True

    def __post_init__(self):
        if self.action_bounding not in BOUNDINGS:
            raise ValueError(f"action_bounding must be one of {BOUNDINGS}, got {self.action_bounding!r}")

    @property
    def mean_net(self) -> MLP:
        return MLP(tuple(self.hidden_sizes), self.action_dim, self.activation, output_scale=0.01)

    def init(self, key: jax.Array, init_log_std: jax.Array | float = 0.0) -> dict:
        """Parameters: {"mean_net", "log_std", "obs_norm": {"mean", "var"}}."""
        return {**_init_net(self.mean_net, self.obs_dim, key),
                "log_std": jnp.full((self.action_dim,), init_log_std, jnp.float32)}

    def normalize(self, params: dict, obs: jax.Array) -> jax.Array:
        if not self.normalize_observations:
            return obs
        return normalize(obs, params["obs_norm"]["mean"], params["obs_norm"]["var"])

    def apply_normalized(self, params: dict, nobs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) from an already normalised observation."""
        mean = self.mean_net.apply({"params": params["mean_net"]}, nobs)
        return mean, jnp.broadcast_to(params["log_std"], mean.shape)


@dataclass(frozen=True)
class CategoricalPolicy:
    """A softmax policy over `num_actions` discrete actions (MiniGrid's), with the same surface as
    `GaussianPolicy` so that PPO, the checkpoints and the evaluators take either.

    `apply(params, obs) -> (logits,)`; a "sample" u is the action index (int32, shape ()); the
    entropy is the categorical's, -sum_a pi(a) log pi(a) <= log(num_actions); `bound` is the
    identity. The logits net is stored under "mean_net" (the name every measure of a policy's
    network reads); there is no "log_std".
    """

    obs_dim: int
    action_dim: int  # the number of actions
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_observations: bool = True

    @property
    def mean_net(self) -> MLP:
        return MLP(tuple(self.hidden_sizes), self.action_dim, self.activation, output_scale=0.01)

    def init(self, key: jax.Array, init_log_std: jax.Array | float = 0.0) -> dict:
        """Parameters: {"mean_net", "obs_norm": {"mean", "var"}} (`init_log_std` is ignored)."""
        return _init_net(self.mean_net, self.obs_dim, key)

    normalize = GaussianPolicy.normalize

    def apply_normalized(self, params: dict, nobs: jax.Array) -> tuple[jax.Array]:
        return (self.mean_net.apply({"params": params["mean_net"]}, nobs),)

    def apply(self, params: dict, obs: jax.Array) -> tuple[jax.Array]:
        """(logits,) for a raw observation."""
        return self.apply_normalized(params, self.normalize(params, obs))

    def bound(self, u: jax.Array) -> jax.Array:
        return u

    def sample(self, key, logits) -> tuple[jax.Array, jax.Array]:
        u = jax.random.categorical(key, logits).astype(jnp.int32)
        return u, self.log_prob(u, logits)

    def log_prob(self, u, logits) -> jax.Array:
        logp = jax.nn.log_softmax(logits)
        return jnp.take_along_axis(logp, u[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def distribution_entropy(self, logits) -> jax.Array:
        logp = jax.nn.log_softmax(logits)
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)

    def probabilities(self, params: dict, obs: jax.Array) -> jax.Array:
        return jax.nn.softmax(self.apply(params, obs)[0])

    def deterministic_action(self, params: dict, obs: jax.Array) -> jax.Array:
        """The most probable action (int32)."""
        return jnp.argmax(self.apply(params, obs)[0], axis=-1).astype(jnp.int32)

    def stochastic_action(self, key, params: dict, obs: jax.Array) -> jax.Array:
        return self.sample(key, *self.apply(params, obs))[0]

"""A Gaussian MLP policy given by its weights: policies trained elsewhere, in the form the measures read.

`ImportedGaussianPolicy` has the interface of `entrolab.agents.policy.GaussianPolicy`
(`apply(params, obs) -> (mean, log_std)`, `apply_normalized`, `normalize`, `bound`,
`sample`, `log_prob`, `deterministic_action`, `stochastic_action`), so that
`episode_returns`, `evaluate_grid`, `norm_measures`, `empirical_lipschitz`,
`fisher_trace` and `sharpness` take it unchanged. What it adds: activations
beyond flax's four (with torch's definitions: exact GELU, LeakyReLU's 0.01),
a state-dependent log-std head (Stable-Baselines3's SAC, entrolab's SAC), the
normalisation constants of SB3's `VecNormalize` (clip and epsilon), and an
affine map from the network's action units to entrolab's frame.

The network, for a raw observation s (obs_dim,):

    x = clip((s - m) / sqrt(v + eps), -c, c)        (if normalize_observations; else x = s)
    h_0 = x,   h_{l+1} = phi(h_l W_l + b_l)          l = 0 .. L-1 (hidden_sizes, L may be 0)
    nu  = h_L W_L + b_L                              the mean head, (action_dim,)
    mean = (nu - mean_offset) / mean_scale
    log_std = log_std                                (a parameter, (action_dim,))
           or clip(h_L K + k, log_std_min, log_std_max)   (state_dependent_std: the log-std head)

Params: {"mean_net": {"Dense_0": {"kernel": (in, out), "bias": (out,)}, ..., "Dense_L": mean head},
"log_std": (action_dim,) or "log_std_net": {"kernel", "bias"}, and "obs_norm": {"mean", "var"}
(with normalize_observations)}. "mean_net" holds the hidden layers and the mean head under flax's
names, so `complexity.dense_layers` reads them; the log-std head is not part of the mean network.

The action frame. entrolab's policies act in [-1, 1]^m and the evaluation maps an action
a to the env's box by `to_env_action` (low + (a + 1)(high - low) / 2). A policy that outputs its
mean in the env's units (SB3's PPO: the action is clip(nu, low, high)) enters with
mean_offset = (high + low) / 2 and mean_scale = (high - low) / 2, and its log-std parameter
shifted by -log(mean_scale): then to_env_action(clip(mean, -1, 1)) = clip(nu, low, high), and
the Gaussian of the pre-clip action is the same distribution in the new units. The weights
themselves are the trained ones (the norms measure them), and the Fisher information, which does
not change under a fixed invertible map of the action, is the one of the original policy.
A tanh-squashed policy (SAC) is already in this frame: offset 0, scale 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from entrolab.agents.policy import BOUNDINGS, GaussianActions

# torch.nn's activations with their default arguments, as jax functions
ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01),
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),  # GELU(approximate="tanh"); flax's nn.gelu
    "silu": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
}

# entrolab's MLP activations (flax.linen) by their names here: flax's gelu is the tanh approximation
FLAX_ACTIVATIONS = {"tanh": "tanh", "relu": "relu", "gelu": "gelu_tanh", "silu": "silu"}


@dataclass(frozen=True)
class ImportedGaussianPolicy(GaussianActions):
    """A Gaussian MLP policy in entrolab's action frame (see the module docstring); its distribution
    (bounding, sampling, log-density, entropy, actions) is `GaussianActions`', as GaussianPolicy's."""

    obs_dim: int
    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    action_bounding: str = "clip"
    state_dependent_std: bool = False
    normalize_observations: bool = False
    obs_clip: float = 10.0
    obs_epsilon: float = 1e-8
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    mean_offset: tuple[float, ...] | None = None  # None: 0
    mean_scale: tuple[float, ...] | None = None  # None: 1

    def __post_init__(self):
        if self.action_bounding not in BOUNDINGS:
            raise ValueError(f"action_bounding must be one of {BOUNDINGS}, got {self.action_bounding!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        for name in ("mean_offset", "mean_scale"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                if len(value) != self.action_dim or not all(math.isfinite(v) for v in value):
                    raise ValueError(f"{name} must be {self.action_dim} finite numbers, got {value}")
                object.__setattr__(self, name, value)
        if self.mean_scale is not None and not all(v > 0 for v in self.mean_scale):
            raise ValueError(f"mean_scale must be positive, got {self.mean_scale}")

    # ---- the network --------------------------------------------------------
    def normalize(self, params: dict, obs: jax.Array) -> jax.Array:
        if not self.normalize_observations:
            return obs
        stats = params["obs_norm"]
        x = (obs - stats["mean"]) / jnp.sqrt(stats["var"] + self.obs_epsilon)
        return jnp.clip(x, -self.obs_clip, self.obs_clip)

    def apply_normalized(self, params: dict, nobs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) from an already normalised observation, each (..., action_dim)."""
        act = ACTIVATIONS[self.activation]
        net = params["mean_net"]
        h = nobs
        for l in range(len(self.hidden_sizes)):
            h = act(h @ net[f"Dense_{l}"]["kernel"] + net[f"Dense_{l}"]["bias"])
        head = net[f"Dense_{len(self.hidden_sizes)}"]
        mean = h @ head["kernel"] + head["bias"]
        if self.mean_offset is not None:
            mean = mean - jnp.asarray(self.mean_offset, mean.dtype)
        if self.mean_scale is not None:
            mean = mean / jnp.asarray(self.mean_scale, mean.dtype)
        if self.state_dependent_std:
            log_std = h @ params["log_std_net"]["kernel"] + params["log_std_net"]["bias"]
            log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        else:
            log_std = jnp.broadcast_to(params["log_std"], mean.shape)
        return mean, log_std


def from_squashed_gaussian(policy, params: dict) -> tuple[ImportedGaussianPolicy, dict]:
    """entrolab's SAC actor (`SquashedGaussianPolicy`, one MLP whose last layer gives
    concat(mean, log_std)) as an `ImportedGaussianPolicy` with the same function: the last
    layer's kernel (h, 2m) splits into the mean head (h, m) and the log-std head (h, m)."""
    net = params["net"]
    last = f"Dense_{len(policy.hidden_sizes)}"
    if last not in net:
        raise ValueError(f"the SAC actor's params have no {last} (keys: {sorted(net)})")
    m = policy.action_dim
    mean_net = {k: v for k, v in net.items() if k != last}
    mean_net[last] = {"kernel": net[last]["kernel"][:, :m], "bias": net[last]["bias"][:m]}
    log_std_net = {"kernel": net[last]["kernel"][:, m:], "bias": net[last]["bias"][m:]}
    imported = ImportedGaussianPolicy(
        obs_dim=policy.obs_dim, action_dim=m, hidden_sizes=tuple(policy.hidden_sizes),
        activation=FLAX_ACTIVATIONS.get(policy.activation, policy.activation), action_bounding="tanh",
        state_dependent_std=True,
        log_std_min=policy.log_std_min, log_std_max=policy.log_std_max,
    )
    return imported, {"mean_net": mean_net, "log_std_net": log_std_net}

"""REINFORCE with a fixed-std Gaussian policy: the learner of Ahmed et al.'s continuous experiments.

The authors (google-research/policy-learning-landscape, read for this port; ../shared/notes/
research.md) vary a policy's entropy only through a *fixed* standard deviation and train its mean
with plain REINFORCE: `num_trajectories` = 16 complete episodes per update, the discounted
reward-to-go of every step whitened over the batch (mean 0, std 1), SGD with learning rate 0.1,
a linear mean (no hidden layer). The same here, vmapped like PPO so that a sweep over the std
(train_sweep's list of "alphas" sets `std`) and seeds is one compiled program.

Departures (each a config option): `hidden_sizes` allows an MLP mean (default () = linear);
`normalize_observations` (off by default, as the authors) is a running mean/std when on;
actions are clipped to the action box (`action_bounding = "clip"`) or tanh-squashed. Episodes
run to `max_steps_in_episode` and every step after an episode's first termination is masked.
The return discount `gamma` defaults to the authors' 0.995.

`make_train(config, env, env_params)` returns the trainer that `entrolab.training.train_sweep`
drives (init_batch, run, full_policy_params, policy, action bounds), so checkpoints, runs tables
and every measure (excess risk, Fisher, probes) work on REINFORCE policies unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax
from flax import struct

from entrolab.agents.batching import init_one_by_one
from entrolab.agents.networks import ACTIVATIONS
from entrolab.agents.policy import BOUNDINGS, GaussianPolicy
from entrolab.agents.running_stats import RunningStats, normalize
from entrolab.agents.spaces import flat_bounded_spaces, to_env_action
from entrolab.envs.core import Environment


@dataclass(frozen=True)
class ReinforceConfig:
    """Static structure of a REINFORCE run."""

    total_timesteps: int = field(default=200_000, metadata={"help": (
        "env steps per agent (rounded down to whole updates of num_trajectories x max_steps_in_episode)")})
    num_trajectories: int = field(default=16, metadata={"help": "complete episodes per update (the authors' 16)"})
    hidden_sizes: tuple[int, ...] = field(default=(), metadata={"help": (
        "hidden-layer widths of the mean network; () = linear (the authors')")})
    activation: str = field(default="tanh", metadata={"help": "hidden-layer activation: tanh, relu, gelu or silu"})
    action_bounding: str = field(default="clip", metadata={"help": '"clip" a Gaussian sample, or "tanh" squashing'})
    normalize_observations: bool = field(default=False, metadata={"help": (
        "running mean/var of observations (off: the authors' linear policy sees raw observations)")})
    whiten_returns: bool = field(default=True, metadata={"help": (
        "standardise the reward-to-go over each update's batch (the authors' baseline)")})

    def __post_init__(self):
        if self.total_timesteps < 1 or self.num_trajectories < 1:
            raise ValueError("total_timesteps and num_trajectories must be positive")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.action_bounding not in BOUNDINGS:
            raise ValueError(f"action_bounding must be one of {BOUNDINGS}, got {self.action_bounding!r}")
        if any(int(h) < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")


@struct.dataclass
class ReinforceHParams:
    """Traced hyperparameters (a sweep over any of them is a vmap)."""

    std: float = struct.field(default=1.0, metadata={"help": (
        "the fixed standard deviation of the Gaussian policy (set per agent from the sweep's alphas)")})
    learning_rate: float = struct.field(default=0.1, metadata={"help": "SGD learning rate (the authors' 0.1)"})
    gamma: float = struct.field(default=0.995, metadata={"help": "discount of the reward-to-go (the authors' 0.995)"})

    def check(self) -> ReinforceHParams:
        import numpy as np

        for name, ok in {"std": lambda v: v > 0, "learning_rate": lambda v: v > 0,
                         "gamma": lambda v: 0 <= v <= 1}.items():
            v = np.asarray(getattr(self, name))
            if not np.all(np.isfinite(v)) or not np.all(ok(v)):
                raise ValueError(f"{name} out of range: {v}")
        return self


@struct.dataclass
class ReinforceState:
    params: dict  # {"mean_net", "log_std"} (log_std fixed)
    opt_state: optax.OptState
    obs_stats: RunningStats
    key: jax.Array
    update_index: jax.Array
    init_policy: dict  # the initial policy params (distance-from-init measures)


class Reinforce:
    """The compiled-program pieces of REINFORCE for one (config, env)."""

    def __init__(self, config: ReinforceConfig, env: Environment, env_params=None):
        self.config = config
        self.env = env
        params = env.default_params if env_params is None else env_params
        obs_dim, action_dim, self.action_low, self.action_high = flat_bounded_spaces(env, params, "REINFORCE")
        self.num_steps = int(params.max_steps_in_episode)
        self.num_updates = config.total_timesteps // (config.num_trajectories * self.num_steps)
        if self.num_updates < 1:
            raise ValueError(f"total_timesteps ({config.total_timesteps}) is smaller than one update "
                             f"({config.num_trajectories} x {self.num_steps} steps)")
        self.policy = GaussianPolicy(obs_dim=obs_dim, action_dim=action_dim, hidden_sizes=tuple(config.hidden_sizes),
                                     activation=config.activation, action_bounding=config.action_bounding,
                                     normalize_observations=config.normalize_observations)

    def optimizer(self, hp: ReinforceHParams):
        return optax.inject_hyperparams(optax.sgd)(learning_rate=hp.learning_rate)

    def full_policy_params(self, state: ReinforceState) -> dict:
        return {**state.params, "obs_norm": {"mean": state.obs_stats.mean, "var": state.obs_stats.var}}

    def init(self, key: jax.Array, hp: ReinforceHParams, env_params) -> ReinforceState:
        k_pol, k_state = jax.random.split(key)
        full = self.policy.init(k_pol, jnp.log(hp.std))
        params = {"mean_net": full["mean_net"], "log_std": full["log_std"]}
        obs_dim = self.policy.obs_dim
        stats = RunningStats.create((obs_dim,))
        return ReinforceState(params=params, opt_state=self.optimizer(hp).init(params), obs_stats=stats, key=k_state,
                              update_index=jnp.zeros((), jnp.int32), init_policy=full)

    def init_batch(self, keys: jax.Array, hp_batch: ReinforceHParams, env_params) -> ReinforceState:
        """One agent per key, initialised one at a time and stacked (`batching.init_one_by_one`)."""
        return init_one_by_one(self.init, keys, hp_batch, env_params)

    def _episodes(self, key, params, stats, env_params):
        """num_trajectories episodes from reset: (obs, u, reward, alive) each (N, T, ...)."""
        def one(k):
            k_reset, k_run = jax.random.split(k)
            obs, env_state = self.env.reset(k_reset, env_params)

            def body(carry, k):
                obs, env_state, alive = carry
                k_act, k_env = jax.random.split(k)
                nobs = normalize(obs, stats.mean, stats.var) if self.config.normalize_observations else obs
                mean, log_std = self.policy.apply_normalized(params, nobs)
                u, _ = self.policy.sample(k_act, mean, log_std)
                a = to_env_action(self.policy.bound(u), self.action_low, self.action_high)
                obs2, env_state, reward, term, trunc, _ = self.env.step(k_env, env_state, a, env_params)
                return (obs2, env_state, alive & ~(term | trunc)), (obs, u, reward, alive)

            _, out = jax.lax.scan(body, (obs, env_state, jnp.asarray(True)), jax.random.split(k_run, self.num_steps))
            return out

        return jax.vmap(one)(jax.random.split(key, self.config.num_trajectories))

    def update(self, state: ReinforceState, hp: ReinforceHParams, env_params):
        cfg = self.config
        key, k_ep = jax.random.split(state.key)
        obs, u, reward, alive = self._episodes(k_ep, state.params, state.obs_stats, env_params)
        mask = alive.astype(jnp.float32)
        reward = reward * mask

        def to_go(r):  # discounted reward-to-go along time
            return jax.lax.scan(lambda g, x: (x + hp.gamma * g, x + hp.gamma * g), 0.0, r, reverse=True)[1]

        g = jax.vmap(to_go)(reward)
        if cfg.whiten_returns:
            n = jnp.maximum(mask.sum(), 1.0)
            mean = jnp.sum(g * mask) / n
            std = jnp.sqrt(jnp.sum(((g - mean) * mask) ** 2) / n)
            g = (g - mean) / (std + 1e-8)
        stats = state.obs_stats
        nobs = normalize(obs, stats.mean, stats.var) if cfg.normalize_observations else obs

        def loss(mean_params):
            params = {**state.params, "mean_net": mean_params}
            mean, log_std = self.policy.apply_normalized(params, nobs)
            logp = self.policy.log_prob(u, mean, log_std)
            return -jnp.sum(logp * g * mask) / jnp.maximum(mask.sum(), 1.0)

        value, grad = jax.value_and_grad(loss)(state.params["mean_net"])
        grads = {"mean_net": grad, "log_std": jnp.zeros_like(state.params["log_std"])}  # the std stays fixed
        updates, opt_state = self.optimizer(hp).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        params = {**params, "log_std": state.params["log_std"]}
        if cfg.normalize_observations:
            stats = stats.update(obs.reshape(-1, obs.shape[-1]))  # (steps after an episode's end included)
        returns = jnp.sum(reward, axis=1)
        state = state.replace(params=params, opt_state=opt_state, obs_stats=stats, key=key,
                              update_index=state.update_index + 1)
        metrics = {
            "env_steps": (state.update_index * cfg.num_trajectories * self.num_steps).astype(jnp.float32),
            "episode_return": jnp.mean(returns),
            "num_episodes": jnp.float32(cfg.num_trajectories),
            "loss": value,
            "grad_norm": optax.tree.norm(grad),
            "log_std_mean": jnp.mean(params["log_std"]),
        }
        return state, metrics

    def run(self, state: ReinforceState, hp: ReinforceHParams, env_params, num_updates: int):
        return jax.lax.scan(lambda s, _: self.update(s, hp, env_params), state, None, num_updates)


def make_train(config: ReinforceConfig, env: Environment, env_params=None) -> Reinforce:
    return Reinforce(config, env, env_params)

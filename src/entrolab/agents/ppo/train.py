"""PPO as a pure training function of (key, hyperparameters, env params).

    train = make_train(config, env)
    final_state, metrics = train(key, hparams, env_params)
    # many agents in one program:
    jax.jit(jax.vmap(train, in_axes=(0, 0, None)))(keys, stacked_hparams, env_params)

One update = a rollout of `num_steps` in `num_envs` environments (a
`lax.scan` over a `vmap`), GAE, then `num_epochs` x `num_minibatches`
gradient steps (nested `lax.scan`s). `train` scans `num_updates` updates;
`init` and `update` are exposed so that a driver can run chunks of updates
between progress reports and checkpoints with the same compiled program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from entrolab.agents.batching import all_finite, init_one_by_one
from entrolab.agents.networks import MLP, squashed_gaussian_entropy
from entrolab.agents.policy import CategoricalPolicy, GaussianPolicy
from entrolab.agents.ppo.config import PPOConfig, PPOHParams, entropy_coefficient
from entrolab.agents.ppo.losses import clipped_surrogate, explained_variance, gae
from entrolab.agents.running_stats import RunningStats, normalize
from entrolab.agents.spaces import flat_bounded_spaces, to_env_action
from entrolab.envs.core import Environment
from entrolab.envs.spaces import Discrete
from entrolab.measures.state_entropy import RunningStd, knn_intrinsic_reward


@struct.dataclass
class Transition:
    """One rollout step for every environment; leading axes (T, num_envs)."""

    nobs: jax.Array  # normalised observation the action was chosen from
    u: jax.Array  # pre-bounding Gaussian sample (the action index for a categorical policy)
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_value: jax.Array  # V(final observation) of the step (used when the episode ended)
    obs: jax.Array  # the raw observation, or the env's `state_features` where it has them (the k-NN
    # state-entropy bonus measures distances in it)


@struct.dataclass
class PPOState:
    params: dict  # {"policy": {"mean_net", "log_std"}, "critic": ...}
    opt_state: Any
    obs_stats: RunningStats
    env_state: Any
    obs: jax.Array  # raw observations of the current step, (num_envs, obs_dim)
    episode_return: jax.Array  # running undiscounted return per environment
    discounted_return: jax.Array  # running discounted return per environment (reward normalisation)
    return_stats: RunningStats  # of the discounted returns: rewards are divided by their std
    value_stats: RunningStats  # of the value targets (normalize_values)
    key: jax.Array
    update_index: jax.Array  # updates done so far
    init_policy: dict  # the policy's parameters at initialisation (for distance-from-init)
    intrinsic_stats: RunningStd  # running std of the k-NN state-entropy bonus (state_entropy_k > 0)
    diverged_at: jax.Array  # env steps at which an update first gave non-finite values (-1: never); frozen since


def _select(pred: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """a where pred else b, also for typed PRNG keys (selected through their data)."""
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        data = jnp.where(pred, jax.random.key_data(a), jax.random.key_data(b))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    return jnp.where(pred, a, b)


def _labels(params: dict) -> dict:
    return {part: jax.tree.map(lambda _, part=part: part, sub) for part, sub in params.items()}


def make_optimizer(hp: PPOHParams, grad_clip: str = "separate", optimizer: str = "adam") -> optax.GradientTransformation:
    """Global-norm clipping then Adam (learning rate and eps injected, so they can be traced), or
    RMSprop as torch's (decay 0.99, eps outside the square root, zero initial scale).

    "separate": the actor's gradient is clipped to `max_grad_norm` and the critic's to
    `critic_max_grad_norm`, each on its own; "joint": one clip of both at `max_grad_norm`."""
    if grad_clip == "joint":
        clip = optax.clip_by_global_norm(hp.max_grad_norm)
    else:
        clip = optax.multi_transform({"policy": optax.clip_by_global_norm(hp.max_grad_norm),
                                      "critic": optax.clip_by_global_norm(hp.critic_max_grad_norm)}, _labels)
    if optimizer == "rmsprop":
        step = optax.inject_hyperparams(optax.rmsprop, static_args=("eps_in_sqrt",))(
            learning_rate=hp.learning_rate, decay=0.99, eps=hp.adam_eps, eps_in_sqrt=False)
    else:
        step = optax.inject_hyperparams(optax.adam)(learning_rate=hp.learning_rate, eps=hp.adam_eps)
    return optax.chain(clip, step)


def _scale(stats: RunningStats) -> jax.Array:
    return jnp.sqrt(stats.var + 1e-8)


class PPO:
    """The compiled-program pieces of PPO for one (config, env). Call it to train."""

    def __init__(self, config: PPOConfig, env: Environment, env_params=None):
        self.config = config
        self.env = env
        params = env.default_params if env_params is None else env_params
        space = env.action_space(params)
        if isinstance(space, Discrete):  # a categorical policy (MiniGrid's three actions)
            if config.entropy_bonus == "squashed":
                raise ValueError('entropy_bonus = "squashed" is for tanh-bounded Gaussian actions; '
                                 f"{env.name} has discrete actions")
            obs_shape = env.observation_space(params).shape
            if len(obs_shape) != 1:
                raise ValueError(f"PPO needs flat observations, got {obs_shape}")
            self.action_low = self.action_high = None
            self.policy = CategoricalPolicy(
                obs_dim=obs_shape[0], action_dim=int(space.n), hidden_sizes=tuple(config.hidden_sizes),
                activation=config.activation, normalize_observations=config.normalize_observations,
            )
        else:
            obs_dim, action_dim, self.action_low, self.action_high = flat_bounded_spaces(env, params, "PPO")
            self.policy = GaussianPolicy(
                obs_dim=obs_dim,
                action_dim=action_dim,
                hidden_sizes=tuple(config.hidden_sizes),
                activation=config.activation,
                action_bounding=config.action_bounding,
                normalize_observations=config.normalize_observations,
            )
        # the k-NN bonus's points: the env's state features where it defines them (the MiniGrid room's
        # (x, y, direction), its observation being partial), else the raw observation
        self.bonus_features = getattr(env, "state_features", None) if config.state_entropy_k else None
        self.critic = MLP(tuple(config.critic_hidden_sizes or config.hidden_sizes), 1, config.activation)

    def to_env_action(self, a: jax.Array) -> jax.Array:
        """Affine map from [-1, 1]^m to the environment's action box (discrete actions: as they are)."""
        return to_env_action(a, self.action_low, self.action_high)

    # ---- pieces ---------------------------------------------------------------
    def value(self, critic_params, nobs, value_stats: RunningStats | None = None):
        """V(s) in the units of the training rewards (the critic's output mapped back from
        standardised targets when `normalize_values`)."""
        out = self.critic.apply({"params": critic_params}, nobs)[..., 0]
        if self.config.normalize_values:
            out = out * _scale(value_stats) + value_stats.mean
        return out

    def full_policy_params(self, state: PPOState) -> dict:
        """Policy parameters with the observation statistics, for `policy.apply`."""
        return {
            **state.params["policy"],
            "obs_norm": {"mean": state.obs_stats.mean, "var": state.obs_stats.var},
        }

    def _normalize(self, stats: RunningStats, obs):
        if not self.config.normalize_observations:
            return obs
        return normalize(obs, stats.mean, stats.var)

    def init(self, key: jax.Array, hp: PPOHParams, env_params) -> PPOState:
        cfg = self.config
        k_pol, k_critic, k_env, k_state = jax.random.split(key, 4)
        full = self.policy.init(k_pol, hp.init_log_std)
        policy = {k: v for k, v in full.items() if k != "obs_norm"}
        critic = self.critic.init(k_critic, jnp.zeros((self.policy.obs_dim,)))["params"]
        params = {"policy": policy, "critic": critic}
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(k_env, cfg.num_envs), env_params)
        return PPOState(
            params=params,
            opt_state=make_optimizer(hp, cfg.grad_clip, cfg.optimizer).init(params),
            obs_stats=RunningStats.create((self.policy.obs_dim,), obs.dtype),
            env_state=env_state,
            obs=obs,
            episode_return=jnp.zeros((cfg.num_envs,), jnp.float32),
            discounted_return=jnp.zeros((cfg.num_envs,), jnp.float32),
            return_stats=RunningStats.create((), jnp.float32),
            value_stats=RunningStats.create((), jnp.float32),
            key=k_state,
            update_index=jnp.zeros((), jnp.int32),
            init_policy=policy,
            intrinsic_stats=RunningStd.create(),
            diverged_at=jnp.asarray(-1, jnp.int32),
        )

    def _rollout(self, state: PPOState, hp: PPOHParams, env_params):
        cfg = self.config
        step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
        vstats = state.value_stats

        def body(carry, key):
            obs, env_state, stats, ep_ret, disc, ret_stats = carry
            if cfg.normalize_observations:
                stats = stats.update(obs)
            nobs = self._normalize(stats, obs)
            k_act, k_env = jax.random.split(key)
            dist = self.policy.apply_normalized(state.params["policy"], nobs)
            u, log_prob = self.policy.sample(k_act, *dist)
            value = self.value(state.params["critic"], nobs, vstats)
            next_obs, env_state, reward, term, trunc, info = step_env(
                jax.random.split(k_env, cfg.num_envs), env_state, self.to_env_action(self.policy.bound(u)), env_params
            )
            final_value = self.value(state.params["critic"], self._normalize(stats, info["final_observation"]), vstats)
            done = term | trunc
            ep_ret = ep_ret + reward
            finished = jnp.where(done, ep_ret, 0.0)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            train_reward = reward
            if cfg.normalize_rewards:  # SB3's VecNormalize: the std of the discounted return, reset at ends
                disc = disc * hp.gamma + reward
                ret_stats = ret_stats.update(disc)
                train_reward = jnp.clip(reward / _scale(ret_stats), -hp.reward_clip, hp.reward_clip)
                disc = jnp.where(done, 0.0, disc)
            points = obs if self.bonus_features is None else jax.vmap(self.bonus_features, (0, None))(env_state, env_params)
            tr = Transition(nobs, u, log_prob, value, train_reward, term, trunc, final_value, points)
            return (next_obs, env_state, stats, ep_ret, disc, ret_stats), (tr, finished, done)

        key, k_roll = jax.random.split(state.key)
        carry = (state.obs, state.env_state, state.obs_stats, state.episode_return, state.discounted_return,
                 state.return_stats)
        (obs, env_state, stats, ep_ret, disc, ret_stats), (traj, finished, done) = jax.lax.scan(
            body, carry, jax.random.split(k_roll, cfg.num_steps)
        )
        state = state.replace(obs=obs, env_state=env_state, obs_stats=stats, episode_return=ep_ret,
                              discounted_return=disc, return_stats=ret_stats, key=key)
        return state, traj, finished, done

    def _loss(self, params, batch, advantages, returns, hp: PPOHParams, ent_coef, value_stats: RunningStats):
        dist = self.policy.apply_normalized(params["policy"], batch.nobs)
        log_prob = self.policy.log_prob(batch.u, *dist)
        if self.config.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss, approx_kl, clip_fraction = clipped_surrogate(log_prob - batch.log_prob, advantages, hp.clip_eps)
        if self.config.normalize_values:  # the critic's raw output against standardised targets
            value = self.critic.apply({"params": params["critic"]}, batch.nobs)[..., 0]
            returns = (returns - value_stats.mean) / _scale(value_stats)
        else:
            value = self.value(params["critic"], batch.nobs)
        value_loss = jnp.mean((value - returns) ** 2)
        if self.config.entropy_bonus == "squashed":  # the entropy of tanh(u): bounded by d log 2
            entropy = jnp.mean(squashed_gaussian_entropy(*dist))
        else:
            entropy = jnp.mean(self.policy.distribution_entropy(*dist))
        loss = policy_loss + hp.vf_coef * value_loss - ent_coef * entropy
        return loss, {
            "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
            "approx_kl": approx_kl, "clip_fraction": clip_fraction,
        }

    def _state_entropy_bonus(self, obs: jax.Array, stats: RunningStd) -> tuple[jax.Array, RunningStd]:
        """(T, num_envs) k-NN intrinsic rewards log(1 + eps_k) of the rollout's raw observations or state
        features (`Transition.obs`; the configured coordinates), each estimate over the trajectories of `state_entropy_rollouts`
        environments, divided by their running std (updated with this batch first)."""
        cfg = self.config
        feats = obs if cfg.state_entropy_features is None else obs[..., jnp.asarray(cfg.state_entropy_features)]
        t, e = feats.shape[:2]
        g = cfg.state_entropy_rollouts or e
        groups = feats.swapaxes(0, 1).reshape(e // g, g * t, -1)  # (groups, g envs x T steps, d)
        raw = jax.vmap(lambda x: knn_intrinsic_reward(x, cfg.state_entropy_k))(groups)
        raw = raw.reshape(e, t).swapaxes(0, 1)
        stats = stats.update(raw)
        return stats.normalize(raw), stats

    def update(self, state: PPOState, hp: PPOHParams, env_params) -> tuple[PPOState, dict]:
        """One PPO update (`_update`), guarded: if it leaves a non-finite parameter or loss, the agent
        keeps its state from before the update and is frozen from then on (`diverged_at` records the
        env steps); the other agents of a vmapped sweep are untouched (a per-agent select), so their
        runs are bit-identical to a sweep without the diverging one. Metrics gain "diverged"."""
        new, metrics = self._update(state, hp, env_params)
        finite = all_finite(new.params) & jnp.isfinite(metrics["policy_loss"]) & jnp.isfinite(metrics["value_loss"])
        frozen = state.diverged_at >= 0
        keep = frozen | ~finite
        diverged_at = jnp.where(frozen, state.diverged_at,
                                jnp.where(finite, -1, state.update_index * self.config.batch_size)).astype(jnp.int32)
        out = jax.tree.map(lambda old, upd: _select(keep, old, upd), state, new).replace(diverged_at=diverged_at)
        return out, {**metrics, "diverged": keep.astype(jnp.float32)}

    def _update(self, state: PPOState, hp: PPOHParams, env_params) -> tuple[PPOState, dict]:
        """One PPO update: rollout, GAE, epochs of minibatch steps. Returns metrics."""
        cfg = self.config
        env_steps_before = state.update_index * cfg.batch_size
        ent_coef = entropy_coefficient(hp, env_steps_before, cfg.entropy_schedule)
        state, traj, finished, done = self._rollout(state, hp, env_params)

        last_value = self.value(state.params["critic"], self._normalize(state.obs_stats, state.obs), state.value_stats)
        following = jnp.concatenate([traj.value[1:], last_value[None]], axis=0)
        next_values = jnp.where(done, traj.final_value, following)
        bonus_metrics = {}
        if cfg.state_entropy_k:
            bonus, intrinsic_stats = self._state_entropy_bonus(traj.obs, state.intrinsic_stats)
            state = state.replace(intrinsic_stats=intrinsic_stats)
            bonus_metrics = {"state_entropy_bonus": jnp.mean(bonus)}
            if cfg.state_entropy_target == "reward":
                traj = traj.replace(reward=traj.reward + hp.state_ent_coef * bonus)
        advantages, returns = gae(traj.reward, traj.value, next_values, traj.terminated, done, hp.gamma, hp.gae_lambda)
        if cfg.state_entropy_k and cfg.state_entropy_target == "advantage":
            advantages = advantages + hp.state_ent_coef * bonus

        value_stats = state.value_stats.update(returns.reshape(-1)) if cfg.normalize_values else state.value_stats
        flat = jax.tree.map(lambda x: x.reshape((cfg.batch_size, *x.shape[2:])), (traj, advantages, returns))
        tx = make_optimizer(hp, cfg.grad_clip, cfg.optimizer)
        grad_fn = jax.grad(self._loss, has_aux=True)

        def epoch(carry, key):
            params, opt_state = carry
            perm = jax.random.permutation(key, cfg.batch_size)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, cfg.minibatch_size, *x.shape[1:])), flat
            )

            def minibatch(carry, mb):
                params, opt_state = carry
                batch, adv, ret = mb
                grads, info = grad_fn(params, batch, adv, ret, hp, ent_coef, value_stats)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), info

            return jax.lax.scan(minibatch, (params, opt_state), shuffled)

        key, k_epochs = jax.random.split(state.key)
        (params, opt_state), infos = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(k_epochs, cfg.num_epochs)
        )
        state = state.replace(params=params, opt_state=opt_state, key=key, update_index=state.update_index + 1,
                              value_stats=value_stats)

        num_episodes = jnp.sum(done)
        metrics = {
            "env_steps": (state.update_index * cfg.batch_size).astype(jnp.float32),
            "episode_return": jnp.where(num_episodes > 0, jnp.sum(finished) / jnp.maximum(num_episodes, 1), jnp.nan),
            "num_episodes": num_episodes.astype(jnp.float32),
            "ent_coef": ent_coef,
            "explained_variance": explained_variance(traj.value.reshape(-1), returns.reshape(-1)),
            **({"log_std_mean": jnp.mean(params["policy"]["log_std"])} if "log_std" in params["policy"] else {}),
            "reward_scale": _scale(state.return_stats) if cfg.normalize_rewards else jnp.float32(1.0),
            **bonus_metrics,
            **jax.tree.map(jnp.mean, infos),
        }
        return state, metrics

    def init_batch(self, keys: jax.Array, hp_batch: PPOHParams, env_params) -> PPOState:
        """Initialise one agent per key (hyperparameters batched along axis 0), stacked: the same
        values as `jax.vmap(init)`, one at a time (`entrolab.agents.batching.init_one_by_one` says
        why)."""
        return init_one_by_one(self.init, keys, hp_batch, env_params)

    def run(self, state: PPOState, hp: PPOHParams, env_params, num_updates: int):
        """`num_updates` updates in one scan; metrics stacked along a leading axis."""
        return jax.lax.scan(lambda s, _: self.update(s, hp, env_params), state, None, num_updates)

    def __call__(self, key: jax.Array, hp: PPOHParams, env_params) -> tuple[PPOState, dict]:
        """init + run: the whole training as one pure function. For many agents on a CPU,
        prefer `init_batch` followed by `jax.vmap(run)` (see `init_batch` for why)."""
        state = self.init(key, hp, env_params)
        return self.run(state, hp, env_params, self.config.num_updates)


def make_train(config: PPOConfig, env: Environment, env_params=None) -> PPO:
    """`train(key, hparams, env_params) -> (final_state, metrics)` for this config and env."""
    return PPO(config, env, env_params)

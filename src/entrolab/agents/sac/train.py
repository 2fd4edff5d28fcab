"""SAC and SAC-AdaEnt as a pure training function of (key, hyperparameters, env params).

    train = make_train(config, env, env_params)
    final_state, metrics = train(key, hparams, env_params)
    # many agents in one program:
    jax.jit(jax.vmap(train, in_axes=(0, 0, None)))(keys, stacked_hparams, env_params)

One iteration (`update`) = one step of `num_envs` environments (uniformly
random actions for the first `learning_starts` env steps, then samples of the
policy), the transitions written into the on-device replay buffer, then
`updates_per_step` gradient steps once the buffer holds `learning_starts`
transitions. `run` scans iterations (per-iteration metrics); `__call__` scans
`config.num_chunks` chunks of `config.log_interval` iterations and logs one
row per chunk (`summarize`). `init`, `update` and `run` are exposed so that a
driver can run chunks between progress reports with one compiled program.

One gradient step, in the order of the maxent-mislead code (tianshou's SAC):
1. soft critics toward r + gamma (1 - term) (min Q'(s', a') - alpha log pi(a' | s'));
   under AdaEnt, the plain critics toward r + gamma (1 - term) min Q'plain(s', a')
   with the same a';
2. the actor on mean(alpha log pi(a | s) - Q(s, a)) against the updated critics;
   Q is the soft min-twin, or under AdaEnt, per state, the plain one where the
   soft and plain Q of K policy samples rank them differently (cosine of the
   min-shifted vectors below `adaent_threshold`; `losses.adaent_switch`);
3. with `auto_alpha`, log alpha on -mean(log alpha (log pi + target_entropy))
   with the log pi of step 2;
4. Polyak averaging of every target critic.
alpha is the value before step 3 throughout the step.

AdaEnt adds state (plain critics, their targets and optimiser) and random
draws (the K actions, and the plain critics' initialisation), but takes their
keys from branches that plain SAC also splits and leaves unused: with a
threshold <= 0 (never switching, the similarity being >= 0) AdaEnt computes
the same actor, soft critics and alpha as SAC from the same key
(tests/test_sac.py checks it bit for bit).

Truncation is not termination: the buffer keeps `info["final_observation"]`,
and only `terminated` cuts the bootstrap.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from entrolab.agents.batching import all_finite
from entrolab.agents.sac.buffer import ReplayBuffer, Transition
from entrolab.agents.sac.config import SACConfig, SACHParams
from entrolab.agents.sac.losses import (
    actor_loss,
    adaent_switch,
    alpha_loss,
    choose_q,
    critic_loss,
    polyak,
    soft_td_target,
    td_target,
)
from entrolab.agents.sac.networks import SquashedGaussianPolicy, TwinQ
from entrolab.agents.spaces import flat_bounded_spaces, to_env_action
from entrolab.envs.core import Environment


@struct.dataclass
class SACState:
    params: dict  # {"actor", "critic", "target_critic"} (+ "plain_critic", "target_plain_critic": learns_plain_q)
    opt_state: dict  # Adam states {"actor", "critic", "alpha"} (+ "plain_critic")
    log_alpha: jax.Array  # learned with auto_alpha; log(hp.alpha), unused, without
    buffer: ReplayBuffer
    env_state: Any
    obs: jax.Array  # raw observations of the current step, (num_envs, obs_dim)
    episode_return: jax.Array  # running undiscounted return per environment
    key: jax.Array
    iteration: jax.Array  # iterations done (env steps = iteration * num_envs)
    init_policy: dict  # the actor's parameters at initialisation (for distance-from-init)
    diverged_at: jax.Array  # env steps at which a learning step first gave non-finite values (-1: never)


def make_optimizer(learning_rate) -> optax.GradientTransformation:
    """Adam (torch's defaults, as tianshou); the learning rate may be a traced scalar.

    Adam's state does not depend on the learning rate, so the optimiser is
    rebuilt from the hyperparameters at every step and a chunked run may even
    change them between chunks."""
    return optax.adam(learning_rate)


def summarize(metrics: dict) -> dict:
    """One row from per-iteration metrics (leading axis = iterations).

    Means ignore NaN (iterations without updates, before `learning_starts`);
    `episode_return` is the mean over the episodes finished in the chunk (NaN
    if none), `num_episodes` their count, `env_steps` and `alpha` the values at
    the end of the chunk."""
    row = {k: jnp.nanmean(v, axis=0) for k, v in metrics.items()}
    n = metrics["num_episodes"]
    total = jnp.sum(n, axis=0)
    returns = jnp.where(n > 0, metrics["episode_return"], 0.0)
    row["episode_return"] = jnp.where(total > 0, jnp.sum(returns * n, axis=0) / jnp.maximum(total, 1.0), jnp.nan)
    row["num_episodes"] = total
    row["env_steps"] = metrics["env_steps"][-1]
    row["alpha"] = metrics["alpha"][-1]
    return row


class SAC:
    """The compiled-program pieces of SAC (or SAC-AdaEnt) for one (config, env). Call it to train."""

    def __init__(self, config: SACConfig, env: Environment, env_params=None):
        self.config = config
        self.env = env
        params = env.default_params if env_params is None else env_params
        obs_dim, action_dim, self.action_low, self.action_high = flat_bounded_spaces(env, params, "SAC")
        self.policy = SquashedGaussianPolicy(
            obs_dim=obs_dim,
            action_dim=action_dim,
            hidden_sizes=tuple(config.hidden_sizes),
            activation=config.activation,
            log_std_min=config.log_std_min,
            log_std_max=config.log_std_max,
        )
        self.critic = TwinQ(tuple(config.critic_hidden_sizes or config.hidden_sizes), config.activation)
        self.target_entropy = (
            -float(action_dim) if config.target_entropy is None else float(config.target_entropy)
        )

    def to_env_action(self, a: jax.Array) -> jax.Array:
        """Affine map from [-1, 1]^m to the environment's action box."""
        return to_env_action(a, self.action_low, self.action_high)

    # ---- pieces ---------------------------------------------------------------
    def alpha(self, log_alpha, hp: SACHParams):
        """The entropy coefficient in use: exp(log_alpha) if learned, else hp.alpha."""
        if self.config.auto_alpha:
            return jnp.exp(log_alpha)
        return jnp.asarray(hp.alpha, jnp.float32)

    def soft_q(self, state: SACState, obs, action):
        """min of the twin soft critics at (obs, action), shape obs.shape[:-1]."""
        return self.critic.min(state.params["critic"], obs, action)

    def plain_q(self, state: SACState, obs, action):
        """min of the twin plain critics (AdaEnt only), shape obs.shape[:-1]."""
        if not self.config.learns_plain_q:
            raise ValueError("plain critics exist only with SACConfig(adaent=True) or SACConfig(plain_critic=True)")
        return self.critic.min(state.params["plain_critic"], obs, action)

    def full_policy_params(self, state: SACState) -> dict:
        """The actor's parameters, as `policy.apply` takes them."""
        return state.params["actor"]

    def init(self, key: jax.Array, hp: SACHParams, env_params) -> SACState:
        cfg = self.config
        obs_dim, act_dim = self.policy.obs_dim, self.policy.action_dim
        # five keys whatever the config: the plain critics' key is not taken from the others
        k_actor, k_critic, k_env, k_state, k_plain = jax.random.split(key, 5)
        actor = self.policy.init(k_actor)
        critic = self.critic.init(k_critic, obs_dim, act_dim)
        params = {"actor": actor, "critic": critic, "target_critic": critic}
        tx = make_optimizer(1.0)  # the state is the same for every learning rate
        log_alpha = jnp.log(jnp.asarray(hp.alpha, jnp.float32))
        opt_state = {"actor": tx.init(actor), "critic": tx.init(critic), "alpha": tx.init(log_alpha)}
        if cfg.learns_plain_q:
            plain = self.critic.init(k_plain, obs_dim, act_dim)
            params = {**params, "plain_critic": plain, "target_plain_critic": plain}
            opt_state = {**opt_state, "plain_critic": tx.init(plain)}
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(jax.random.split(k_env, cfg.num_envs), env_params)
        return SACState(
            params=params,
            opt_state=opt_state,
            log_alpha=log_alpha,
            buffer=ReplayBuffer.create(cfg.buffer_size, obs_dim, act_dim, obs.dtype),
            env_state=env_state,
            obs=obs,
            episode_return=jnp.zeros((cfg.num_envs,), jnp.float32),
            key=k_state,
            iteration=jnp.zeros((), jnp.int32),
            init_policy=actor,
            diverged_at=jnp.asarray(-1, jnp.int32),
        )

    def _adaent_switch(self, actor, critic, plain_critic, obs, key, threshold):
        """Switch decision per state from K actions a_k ~ pi(. | s) (no gradient flows)."""
        mean, log_std = self.policy.apply(actor, obs)  # (B, m)
        K = self.config.adaent_num_actions
        noise = jax.random.normal(key, (K, *mean.shape), mean.dtype)
        actions = jnp.tanh(mean + jnp.exp(log_std) * noise)  # (K, B, m)
        chunk = self.config.adaent_chunk
        if chunk is None or chunk >= K:
            obs_k = jnp.broadcast_to(obs, (K, *obs.shape))
            q_soft = self.critic.min(critic, obs_k, actions)  # (K, B)
            q_plain = self.critic.min(plain_critic, obs_k, actions)
        else:  # `chunk` actions per pass: the critics' activations for K x B pairs never coexist

            def both(a):
                return self.critic.min(critic, obs, a), self.critic.min(plain_critic, obs, a)

            q_soft, q_plain = jax.lax.map(both, actions, batch_size=chunk)
        return adaent_switch(q_soft.T, q_plain.T, threshold)

    def _gradient_step(self, params, opt_state, log_alpha, buffer: ReplayBuffer, key, hp: SACHParams):
        cfg = self.config
        # four keys whatever the config; the last only drives AdaEnt's K samples
        k_batch, k_next, k_actor, k_adaent = jax.random.split(key, 4)
        batch = buffer.sample(k_batch, cfg.batch_size)
        alpha = self.alpha(log_alpha, hp)
        nan = jnp.full((), jnp.nan, jnp.float32)

        # 1. critics
        mean_n, log_std_n = self.policy.apply(params["actor"], batch.next_obs)
        u_n, logp_n = self.policy.sample(k_next, mean_n, log_std_n)
        a_n = jnp.tanh(u_n)
        q_next = self.critic.min(params["target_critic"], batch.next_obs, a_n)
        y = soft_td_target(batch.reward, batch.terminated, q_next, logp_n, alpha, hp.gamma)
        critic_tx = make_optimizer(hp.critic_lr)

        def fit(critic_params, opt, target):
            def td_loss(p):
                return critic_loss(self.critic.apply(p, batch.obs, batch.action), target)

            loss, grads = jax.value_and_grad(td_loss)(critic_params)
            updates, opt = critic_tx.update(grads, opt, critic_params)
            return optax.apply_updates(critic_params, updates), opt, loss

        critic, critic_opt, c_loss = fit(params["critic"], opt_state["critic"], y)
        new_params = {**params, "critic": critic}
        new_opt = {**opt_state, "critic": critic_opt}
        plain_loss = nan
        if cfg.learns_plain_q:
            q_next_plain = self.critic.min(params["target_plain_critic"], batch.next_obs, a_n)
            y_plain = td_target(batch.reward, batch.terminated, q_next_plain, hp.gamma)
            plain, plain_opt, plain_loss = fit(params["plain_critic"], opt_state["plain_critic"], y_plain)
            new_params["plain_critic"] = plain
            new_opt["plain_critic"] = plain_opt

        # 2. actor
        if cfg.adaent:
            switch, similarity = self._adaent_switch(
                params["actor"], critic, new_params["plain_critic"], batch.obs, k_adaent, hp.adaent_threshold
            )

        def loss_fn(actor_params):
            mean, log_std = self.policy.apply(actor_params, batch.obs)
            u, logp = self.policy.sample(k_actor, mean, log_std)
            a = jnp.tanh(u)
            q_soft = self.critic.min(critic, batch.obs, a)
            if cfg.learns_plain_q:
                q_plain = jax.lax.stop_gradient(self.critic.min(new_params["plain_critic"], batch.obs, a))
                q_plain_mean = jnp.mean(q_plain)
            if cfg.adaent:
                q = choose_q(q_soft, self.critic.min(new_params["plain_critic"], batch.obs, a), switch)
            else:
                q = q_soft
            if not cfg.learns_plain_q:
                q_plain_mean = nan
            return actor_loss(logp, q, alpha), (logp, log_std, jnp.mean(q_soft), q_plain_mean)

        (a_loss, (logp, log_std, q_soft_mean, q_plain_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params["actor"]
        )
        actor_tx = make_optimizer(hp.actor_lr)
        updates, new_opt["actor"] = actor_tx.update(grads, opt_state["actor"], params["actor"])
        new_params["actor"] = optax.apply_updates(params["actor"], updates)

        # 3. alpha
        if cfg.auto_alpha:
            alpha_grad = jax.grad(alpha_loss)(log_alpha, logp, self.target_entropy)
            updates, new_opt["alpha"] = make_optimizer(hp.alpha_lr).update(alpha_grad, opt_state["alpha"], log_alpha)
            log_alpha = optax.apply_updates(log_alpha, updates)

        # 4. targets
        new_params["target_critic"] = polyak(params["target_critic"], critic, hp.tau)
        if cfg.learns_plain_q:
            new_params["target_plain_critic"] = polyak(
                params["target_plain_critic"], new_params["plain_critic"], hp.tau
            )

        info = {
            "critic_loss": c_loss,
            "actor_loss": a_loss,
            "entropy": -jnp.mean(logp),  # estimate of the squashed policy's entropy on the batch
            "log_std_mean": jnp.mean(log_std),
            "q_soft": q_soft_mean,
            "q_plain": q_plain_mean,
            "plain_critic_loss": plain_loss,
            "adaent_switch_fraction": jnp.mean(switch.astype(jnp.float32)) if cfg.adaent else jnp.zeros(()),
            "adaent_similarity": jnp.mean(similarity) if cfg.adaent else nan,
        }
        return new_params, new_opt, log_alpha, info

    def warmup_iterations(self) -> int:
        """Iterations with no gradient step: those after which the buffer still holds fewer than
        `learning_starts` transitions, i.e. the k = 1, 2, ... with k num_envs < learning_starts."""
        cfg = self.config
        return max(0, -(-int(cfg.learning_starts) // int(cfg.num_envs)) - 1)

    def update(self, state: SACState, hp: SACHParams, env_params, phase: str | None = None) -> tuple[SACState, dict]:
        """One iteration: one step of every environment, then the gradient steps. Returns metrics.

        `phase` (static): None decides at run time whether the buffer is full enough to learn
        (a `lax.cond`, which under `vmap` computes the gradient steps and discards them);
        "warmup" never learns, for a driver that knows the iteration is one of the first
        `warmup_iterations()`: the same results, without computing discarded updates."""
        cfg = self.config
        key, k_policy, k_random, k_env, k_learn = jax.random.split(state.key, 5)
        env_steps_before = state.iteration * cfg.num_envs

        mean, log_std = self.policy.apply(state.params["actor"], state.obs)
        u, _ = self.policy.sample(k_policy, mean, log_std)
        random_action = jax.random.uniform(k_random, mean.shape, mean.dtype, -1.0, 1.0)
        action = jnp.where(env_steps_before < cfg.learning_starts, random_action, jnp.tanh(u))
        step_env = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))
        next_obs, env_state, reward, term, trunc, info = step_env(
            jax.random.split(k_env, cfg.num_envs), state.env_state, self.to_env_action(action), env_params
        )
        buffer = state.buffer.add(Transition(state.obs, action, reward, info["final_observation"], term))
        done = term | trunc
        ep_ret = state.episode_return + reward
        finished = jnp.where(done, ep_ret, 0.0)
        ep_ret = jnp.where(done, 0.0, ep_ret)

        def learn(carry):
            def grad_step(carry, k):
                params, opt_state, log_alpha = carry
                params, opt_state, log_alpha, info = self._gradient_step(params, opt_state, log_alpha, buffer, k, hp)
                return (params, opt_state, log_alpha), info

            carry, infos = jax.lax.scan(grad_step, carry, jax.random.split(k_learn, cfg.updates_per_step))
            return carry, jax.tree.map(lambda x: jnp.mean(x, axis=0), infos)

        def wait(carry):
            shapes = jax.eval_shape(learn, carry)[1]
            return carry, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

        carry = (state.params, state.opt_state, state.log_alpha)
        if phase is None:
            started = (env_steps_before + cfg.num_envs) >= cfg.learning_starts
            (params, opt_state, log_alpha), learn_info = jax.lax.cond(started, learn, wait, carry)
        elif phase == "warmup":
            (params, opt_state, log_alpha), learn_info = wait(carry)
        else:
            raise ValueError(f"phase must be None or 'warmup', got {phase!r}")
        # NaN guard: a learning step that leaves non-finite parameters is undone and the agent's learning
        # frozen from then on (it keeps acting with its last finite policy); per agent under vmap, so the
        # other agents are untouched. Only the learned parts are selected (not the replay buffer).
        finite = all_finite((params, log_alpha))
        frozen = state.diverged_at >= 0
        keep = frozen | ~finite
        params, opt_state, log_alpha = jax.tree.map(lambda old, new: jnp.where(keep, old, new), carry,
                                                    (params, opt_state, log_alpha))
        diverged_at = jnp.where(frozen, state.diverged_at, jnp.where(finite, -1, env_steps_before)).astype(jnp.int32)
        state = state.replace(
            diverged_at=diverged_at,
            params=params, opt_state=opt_state, log_alpha=log_alpha, buffer=buffer, env_state=env_state,
            obs=next_obs, episode_return=ep_ret, key=key, iteration=state.iteration + 1,
        )
        num_episodes = jnp.sum(done)
        metrics = {
            "env_steps": (state.iteration * cfg.num_envs).astype(jnp.float32),
            "episode_return": jnp.where(num_episodes > 0, jnp.sum(finished) / jnp.maximum(num_episodes, 1), jnp.nan),
            "num_episodes": num_episodes.astype(jnp.float32),
            "alpha": self.alpha(log_alpha, hp),
            "diverged": keep.astype(jnp.float32),
            **learn_info,
        }
        return state, metrics

    def init_batch(self, keys: jax.Array, hp_batch: SACHParams, env_params) -> SACState:
        """Initialise one agent per key (hyperparameters batched along axis 0), stacked.

        Agents are initialised one at a time by a jitted `init` and then stacked,
        which gives the same values as `jax.vmap(init)`: a vmapped orthogonal
        initialiser deadlocked on a 2-core CPU (see `PPO.init_batch`). The empty replay buffers
        are allocated once for all agents, not per agent then stacked (benchmarks/sac_memory.py)."""
        # the replay buffers are empty (zeros) at init: they are left out of the per-agent states and
        # allocated once, stacked, so that no buffer exists twice (the peak of a sweep's memory)
        init_one = jax.jit(lambda k, hp, p: self.init(k, hp, p).replace(buffer=None))
        n = int(keys.shape[0])
        states = [init_one(keys[i], jax.tree.map(lambda v: v[i], hp_batch), env_params) for i in range(n)]
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
        cfg = self.config
        template = jax.eval_shape(lambda: ReplayBuffer.create(cfg.buffer_size, self.policy.obs_dim,
                                                              self.policy.action_dim, states[0].obs.dtype))
        buffer = jax.tree.map(lambda s: jnp.zeros((n, *s.shape), s.dtype), template)
        return stacked.replace(buffer=buffer)

    def run(self, state: SACState, hp: SACHParams, env_params, num_iterations: int, phase: str | None = None):
        """`num_iterations` iterations in one scan; metrics stacked along a leading axis."""
        return jax.lax.scan(lambda s, _: self.update(s, hp, env_params, phase), state, None, num_iterations)

    def run_chunks(self, state: SACState, hp: SACHParams, env_params, num_chunks: int, warmup: int = 0,
                   known_phase: bool = True):
        """`num_chunks` chunks of `log_interval` iterations, one `summarize`d row each, starting
        `warmup` iterations before learning starts (0: learning from the first iteration on).

        With `known_phase`, the warm-up iterations run as `update(phase="warmup")`, so that no
        gradient step is computed for them, and a chunk that spans the start of learning is two
        scans whose metrics are joined before `summarize`. The results are those of deciding at
        every iteration, to the bit (tests/test_sac.py). `warmup` must then
        be 0, a multiple of `log_interval` (whole warm-up chunks, `num_chunks` of them), or
        smaller than `log_interval` with `num_chunks` = 1."""
        cfg = self.config
        length = cfg.log_interval

        def chunk(state, _, head=0):
            parts = []
            if head:
                state, m = self.run(state, hp, env_params, head, "warmup")
                parts.append(m)
            if length - head:
                # after the warm-up, the run-time decision as before (always "learn" by then): a program
                # without the cond compiles to other floating-point roundings (tests/test_sac.py)
                state, m = self.run(state, hp, env_params, length - head, None)
                parts.append(m)
            metrics = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts) if len(parts) > 1 else parts[0]
            return state, summarize(metrics)

        if not known_phase or warmup == 0:
            return jax.lax.scan(chunk, state, None, num_chunks)
        if warmup == num_chunks * length:
            def idle(state, _):
                state, metrics = self.run(state, hp, env_params, length, "warmup")
                return state, summarize(metrics)

            return jax.lax.scan(idle, state, None, num_chunks)
        if num_chunks == 1 and 0 < warmup < length:
            state, row = chunk(state, None, head=warmup)
            return state, jax.tree.map(lambda x: x[None], row)
        raise ValueError(f"run_chunks: warmup = {warmup} does not fit {num_chunks} chunks of {length} iterations")

    def chunk_plan(self, num_chunks: int) -> list[tuple[int, int]]:
        """[(warmup, count), ...]: runs of chunks that `run_chunks` can take in one call each, in
        order: whole warm-up chunks, the chunk in which learning starts, then learning chunks."""
        length, w = self.config.log_interval, self.warmup_iterations()
        idle = min(w // length, num_chunks)
        plan = [(idle * length, idle)] if idle else []
        rest = num_chunks - idle
        head = w - idle * length
        # a chunk whose learning part would be one iteration runs whole, deciding per iteration:
        # XLA compiles a scan of length 1 to other roundings, and the results would differ
        if rest and head and length - head >= 2:
            plan.append((head, 1))
            rest -= 1
        if rest:
            plan.append((0, rest))
        return plan

    def __call__(self, key: jax.Array, hp: SACHParams, env_params) -> tuple[SACState, dict]:
        """init + `num_chunks` chunks of `log_interval` iterations; one metrics row per chunk
        (`summarize`). For many agents on a CPU, prefer `init_batch` then `jax.vmap(run)`."""
        cfg = self.config
        state = self.init(key, hp, env_params)

        return self.run_chunks(state, hp, env_params, cfg.num_chunks, known_phase=False)


def make_train(config: SACConfig, env: Environment, env_params=None) -> SAC:
    """`train(key, hparams, env_params) -> (final_state, metrics)` for this config and env."""
    return SAC(config, env, env_params)

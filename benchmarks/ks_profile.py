"""Where a KS env step spends its time: flow alone, flow + actuation, full step, reset alone.

Run: .venv/bin/python benchmarks/ks_profile.py   (1024 envs x 500 steps, one jit each)
"""
import time, jax, jax.numpy as jnp
from entrolab.envs import make
env, p = make("ks")
B, T = 1024, 500
keys = jax.random.split(jax.random.key(0), B)
obs, st = jax.vmap(env.reset, in_axes=(0, None))(keys, p)
def bench(name, f, *args):
    f = jax.jit(f); out = f(*args); jax.block_until_ready(out)
    t = time.perf_counter(); out = f(*args); jax.block_until_ready(out); dt = time.perf_counter() - t
    print(f"{name}: {B*T/dt:,.0f} env-steps/s")
def flow_only(x):
    def body(x, _):
        return jax.vmap(lambda x: env.flow(x, jnp.zeros(64), p))(x), None
    return jax.lax.scan(body, x, None, T)[0]
bench("flow only", flow_only, st.x)
def flow_act(x, k):
    def body(c, _):
        x, k = c
        k, k2 = jax.random.split(k)
        a = jax.random.uniform(k2, (B, 8), minval=-1, maxval=1)
        return (jax.vmap(lambda x, a: env.flow(x, env.actuation(a, p), p))(x, a), k), None
    return jax.lax.scan(body, (x, k), None, T)[0]
bench("flow+actuation", flow_act, st.x, jax.random.key(1))
def full(st, k):
    def body(c, _):
        s, k = c
        k, k1, k2 = jax.random.split(k, 3)
        a = jax.random.uniform(k2, (B, 8), minval=-1, maxval=1)
        o, s, r, te, tr, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k1, B), s, a, p)
        return (s, k), r.mean()
    return jax.lax.scan(body, (st, k), None, T)
bench("full step", full, st, jax.random.key(1))
def resets(k):
    def body(k, _):
        k, k1 = jax.random.split(k)
        o, s = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k1, B), p)
        return k, o.sum()
    return jax.lax.scan(body, k, None, T)
bench("reset only", resets, jax.random.key(1))

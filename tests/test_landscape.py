"""Landscape measures (entrolab.measures.landscape) on objectives with known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from entrolab.measures.landscape import (
    PROBE_COLUMNS, classify, dense_hessian, filter_normalize, hessian_eigenvalues, hessian_trace, interpolate, label_fractions,
    perturbation_probe, plane, probe_label,
)

POINT = {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}  # 8 parameters


def _flat(p):
    return jnp.concatenate([p["w"].ravel(), p["b"]])


def concave(p):
    return -jnp.sum(_flat(p) ** 2)


def saddle(p):
    x = _flat(p)
    return jnp.sum(x[:4] ** 2) - jnp.sum(x[4:] ** 2)


def linear(p):
    return jnp.sum(_flat(p) * jnp.arange(1.0, 9.0))


def constant(p):
    return 0.0 * jnp.sum(_flat(p)) + 3.0


@pytest.mark.parametrize("objective, expected", [
    (concave, "local_optimum"), (saddle, "saddle"), (linear, "linear"), (constant, "flat"),
    (lambda p: -concave(p), "local_minimum"),
])
def test_probes_classify_points_with_known_answers(objective, expected):
    table = perturbation_probe(objective, POINT, jax.random.key(0), num_directions=200, epsilon=0.5)
    assert list(table.columns) == PROBE_COLUMNS and len(table) == 200
    assert classify(table) == expected


def test_probe_projections_are_the_directional_derivatives_of_a_quadratic():
    """For J = g.x + x'Ax/2 at 0: Delta+- = +-eps g.d + eps^2 d'Ad/2 exactly, so gradient_proj = eps g.d
    and curvature_proj = eps^2 d'Ad / 2 (d recomputed with the probe's own key split)."""
    rng = np.random.default_rng(0)
    g = rng.normal(size=8)
    m = rng.normal(size=(8, 8))
    a = m + m.T

    def quad(p):
        x = _flat(p)
        return jnp.dot(g, x) + 0.5 * x @ a @ x

    with jax.enable_x64(True):
        point = jax.tree_util.tree_map(lambda z: z.astype(jnp.float64), POINT)
        table = perturbation_probe(quad, point, jax.random.key(1), num_directions=16, epsilon=[0.1, 0.3])
        k_dir = jax.random.split(jax.random.key(1), 3)[0]
        d = np.array(jax.random.normal(k_dir, (16, 8), jnp.float64))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d = np.concatenate([d[:, 2:], d[:, :2]], axis=1)  # ravel_pytree's order is b, w; _flat's is w, b
    for eps, sub in table.groupby("epsilon"):
        np.testing.assert_allclose(sub["gradient_proj"], eps * d @ g, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sub["curvature_proj"], 0.5 * eps**2 * np.einsum("ni,ij,nj->n", d, a, d),
                                   rtol=1e-9, atol=1e-12)


def test_noise_band_on_a_noisy_constant_labels_every_direction_flat():
    def noisy(p, key):
        return 1.0 + 0.1 * jax.random.normal(key) + 0.0 * jnp.sum(_flat(p))

    table = perturbation_probe(noisy, POINT, jax.random.key(2), num_directions=50, num_repeats=40, sampled=True)
    # common random numbers: every perturbed point shares the key with the centre, so with a flat
    # mean every pair is exactly the centre's value
    assert (table["delta_plus"] == 0).all() and (table["delta_minus"] == 0).all()
    assert 0.05 < table["noise_std"].iloc[0] < 0.15
    assert (table["label"] == "flat").all() and classify(table) == "flat"
    # the same noisy objective with a slope well above the band is linear
    def sloped(p, key):
        return noisy(p, key) + 5.0 * _flat(p)[0] + 5.0 * _flat(p)[5]

    table = perturbation_probe(sloped, POINT, jax.random.key(2), num_directions=200, epsilon=1.0, num_repeats=40,
                               sampled=True)
    assert classify(table, tolerance=0.05) == "linear"
    with pytest.raises(ValueError, match="num_repeats >= 2"):
        perturbation_probe(noisy, POINT, jax.random.key(0), sampled=True)


def test_labels_and_fractions():
    labels = probe_label([-2, 2, 2, 0.1, 0.1], [-2, 2, -2, -0.1, 3], 1.0)
    assert list(labels) == ["down", "up", "slope", "flat", "half"]
    table = pd.DataFrame({"epsilon": [0.1] * 5 + [0.2] * 5, "label": list(labels) * 2})
    frac = label_fractions(table)
    assert list(frac.columns) == ["epsilon", "down", "up", "slope", "flat", "half"]
    np.testing.assert_allclose(frac[["down", "up", "slope", "flat", "half"]].to_numpy(), 0.2)
    assert classify(table) == {0.1: "saddle", 0.2: "saddle"}


def test_batch_size_gives_the_same_probes():
    a = perturbation_probe(saddle, POINT, jax.random.key(3), num_directions=10, epsilon=[0.1, 0.2])
    b = perturbation_probe(saddle, POINT, jax.random.key(3), num_directions=10, epsilon=[0.1, 0.2], batch_size=7)
    pd.testing.assert_frame_equal(a, b)


def test_interpolation_and_planes():
    p1 = jax.tree_util.tree_map(lambda z: z + 1.0, POINT)
    table = interpolate({"concave": concave, "linear": linear}, POINT, p1, ts=[-0.5, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(table["concave"], -8 * np.array([-0.5, 0, 0.5, 1, 1.5]) ** 2, rtol=1e-6)
    np.testing.assert_allclose(table["linear"], 36 * np.array([-0.5, 0, 0.5, 1, 1.5]), rtol=1e-6)
    p2 = jax.tree_util.tree_map(lambda z: z.at[0].add(2.0), POINT)
    grid = plane(concave, POINT, p1, p2, num=5, span=(0.0, 1.0))
    at = grid[(grid["a"] == 1.0) & (grid["b"] == 0.0)]["value"].iloc[0]
    assert at == pytest.approx(float(concave(p1)), rel=1e-6)
    assert grid["value"].max() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one line"):
        plane(concave, POINT, p1, jax.tree_util.tree_map(lambda z: 2 * z, p1))
    with pytest.raises(ValueError, match="both params1 and params2"):
        plane(concave, POINT, p1)
    rand = plane(concave, p1, key=jax.random.key(0), num=3)
    assert len(rand) == 9 and np.isfinite(rand["value"]).all()


def test_filter_normalisation_matches_column_norms_and_zeroes_vectors():
    params = {"w": jnp.arange(6.0).reshape(3, 2) + 1.0, "b": jnp.ones(2)}
    d = filter_normalize({"w": jnp.ones((3, 2)), "b": jnp.ones(2)}, params)
    np.testing.assert_allclose(np.linalg.norm(d["w"], axis=0), np.linalg.norm(params["w"], axis=0), rtol=1e-6)
    np.testing.assert_array_equal(d["b"], 0.0)


def test_lanczos_and_hutchinson_against_the_dense_hessian():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(8, 8))
    a = m @ m.T - 3 * np.eye(8)

    def quad(p):
        x = _flat(p)
        return 0.5 * x @ a @ x + jnp.sum(jnp.sin(x))

    with jax.enable_x64(True):
        point = jax.tree_util.tree_map(lambda z: z.astype(jnp.float64) + 0.3, POINT)
        dense = jax.hessian(lambda x: quad({"w": x[:6].reshape(3, 2), "b": x[6:]}))(
            jnp.concatenate([point["w"].ravel(), point["b"]]))
        eig = np.linalg.eigvalsh(np.asarray(dense))
        perm = np.concatenate([np.arange(6, 8), np.arange(6)])  # ravel_pytree's order: b, then w
        np.testing.assert_allclose(dense_hessian(quad, point), np.asarray(dense)[np.ix_(perm, perm)], rtol=1e-12)
        out = hessian_eigenvalues(quad, point, jax.random.key(0), num_matvecs=8, k=2)
        np.testing.assert_allclose(out["largest"], eig[::-1][:2], rtol=1e-8)
        np.testing.assert_allclose(out["smallest"], eig[:2], rtol=1e-8)
        trace = hessian_trace(quad, point, jax.random.key(1), num_samples=4000)
    assert float(trace) == pytest.approx(float(np.trace(dense)), rel=0.05)
    with pytest.raises(ValueError, match="at most the number of parameters"):
        hessian_eigenvalues(quad, POINT, jax.random.key(0), num_matvecs=9)

"""The report of `entrolab measure`, from its tables and its measure.json only.

`measure_sections(tables, meta)` builds the sections (policy, observation noise, complexity,
Fisher trace, sharpness) that `write_document` renders to report.md and index.html. Numbers
are `fmt_plain`: four significant digits, no exponent where none is needed, and a difference
that is float32 round-off of its operands shown as 0.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from entrolab.report.document import Section, Table, fmt_plain, write_document


def _ci(estimate, low, high, scale=None) -> str:
    if fmt_plain(estimate) == "n/a":
        return "n/a"
    value = fmt_plain(estimate, scale=scale)
    if value == "0" and fmt_plain(low, scale=scale) == "0" and fmt_plain(high, scale=scale) == "0":
        return "0"
    return f"{value} [{fmt_plain(low, scale=scale)}, {fmt_plain(high, scale=scale)}]"


def _policy_section(meta: dict) -> Section:
    src, pol, s = meta.get("source", {}), meta.get("policy", {}), meta.get("settings", {})
    sizes = " -> ".join(str(x) for x in [pol.get("obs_dim"), *pol.get("hidden_sizes", []), pol.get("action_dim")])
    env = meta.get("env", "?") + (f" {meta['env_overrides']}" if meta.get("env_overrides") else "")
    rows = [
        ("source", f"{src.get('format', '?')} {src.get('algorithm', '')}".strip()
         + (f" (stable-baselines3 {src['sb3_version']})" if src.get("sb3_version") else "")),
        ("file", str(src.get("path", "?"))),
        ("sha256", str(src.get("sha256", "?"))[:16] + "..."),
        ("network", f"{sizes}, {pol.get('activation', '?')}"),
        ("actions", {"clip": "Gaussian mean clipped to the action box",
                     "tanh": "tanh-squashed Gaussian mean"}.get(pol.get("action_bounding"), "?")),
        ("log-std", "state-dependent head" if pol.get("state_dependent_std") else "a parameter (state-independent)"),
        ("observation normalisation", str(src.get("obs_normalization") or
                                          ("running statistics in the checkpoint" if pol.get("normalize_observations")
                                           else "none"))),
        ("evaluation env", env),
        ("settings", f"{s.get('episodes')} episodes per noise std and mode, {s.get('states')} visited states, "
                     f"seed {s.get('seed')}"),
    ]
    section = Section("Policy")
    section.blocks.append(Table(("", ""), tuple(rows)))
    return section


def _noise_section(tables: dict[str, pd.DataFrame], meta: dict) -> Section:
    section = Section("Returns under observation noise")
    risk = tables.get("excess_risk")
    if risk is None:
        section.note(f"the env {meta.get('env', '?')} has no obs_noise_std param, so the robustness grid was left "
                     "out (entrolab's envs have it; gymnax's do not)")
        return section
    section.blocks.append(
        "J(sigma): the mean undiscounted return over the episodes at observation-noise std sigma (Gaussian noise "
        "added to every observation the policy sees), the same episode keys at every sigma. Excess risk "
        "R = J(0) - J(sigma) (> 0: the noise hurts) and its rate R / |J(0)|, with 95% paired bootstrap intervals.")
    returns = tables["returns"].set_index(["obs_noise_std", "mode"])
    rows = []
    for r in risk.sort_values(["mode", "obs_noise_std"]).to_dict("records"):
        spread = returns.loc[(r["obs_noise_std"], r["mode"]), "std_return"]
        scale = abs(r["return_reference"])
        rows.append((r["mode"], fmt_plain(r["obs_noise_std"]), f"{fmt_plain(r['return'])} (sd {fmt_plain(spread)})",
                     _ci(r["excess_risk"], r["excess_risk_low"], r["excess_risk_high"], scale),
                     _ci(r["excess_risk_rate"], r["excess_risk_rate_low"], r["excess_risk_rate_high"], 1.0)))
    section.blocks.append(Table(("mode", "obs noise std", "return J", "excess risk R [95% CI]",
                                 "rate R/|J(0)| [95% CI]"), tuple(rows)))
    return section


_COMPLEXITY_ROWS = [
    ("spectral_product", "product of spectral norms", "upper bound on the mean network's Lipschitz constant "
     "(normalised observation; 1-Lipschitz activations)"),
    ("frobenius_product", "product of Frobenius norms", ""),
    ("frobenius_sq_sum", "sum of squared Frobenius norms", ""),
    ("path_norm", "path norm (biases as edges)", ""),
    ("path_norm_no_bias", "path norm (input-output paths)", ""),
    ("dist_from_init", "distance from initialisation (kernels)", ""),
    ("lipschitz_max", "Lipschitz constant, max over visited states", "||d mean / d observation||_2 (raw)"),
    ("lipschitz_mean", "Lipschitz constant, mean over visited states", ""),
    ("lipschitz_normalized_max", "the same w.r.t. the normalised observation, max", ""),
    ("observation_scale", "observation scale max_j 1/sqrt(var_j + eps)", "1 without normalisation"),
]


def _complexity_section(row: pd.Series) -> Section:
    section = Section("Complexity")
    section.blocks.append(f"The mean network's weights as trained (kernels W_l, biases b_l); the Lipschitz "
                          f"constants on {int(row['num_states'])} observations the deterministic policy visits, "
                          "in entrolab's action frame [-1, 1]^m.")
    rows = [(label, fmt_plain(row[key]), note) for key, label, note in _COMPLEXITY_ROWS if key in row.index]
    section.blocks.append(Table(("measure", "value", "note"), tuple(rows)))
    return section


def _fisher_section(row: pd.Series) -> Section:
    section = Section("Fisher trace")
    section.blocks.append(
        "tr F(s) = E_a ||grad_theta log pi(a|s)||^2 per visited state s: the mean part "
        "sum_i ||grad mu_i||^2 / sigma_i^2, the log-std part (2 x action dim for a state-independent log-std; "
        "2 sum_i ||grad log sigma_i||^2 for a state-dependent head), and the sigma-free sensitivity "
        "sum_i ||grad mu_i||^2.")
    stats = ("mean", "median", "q05", "q95", "max")
    rows = []
    for part, label in (("total", "total"), ("mean", "mean part"), ("log_std", "log-std part"),
                        ("sensitivity", "sensitivity")):
        rows.append((label, *(fmt_plain(row.get(f"fisher_{part}_{k}")) for k in stats)))
    section.blocks.append(Table(("", *stats), tuple(rows)))
    return section


def _sharpness_section(table: pd.DataFrame, row: pd.Series, meta: dict) -> Section:
    s = meta.get("settings", {})
    section = Section("Sharpness")
    base = row["sharpness_base_return"]
    bracket = ("" if row["sharpness_bracketed"] else
               " (no grid sigma' exceeded the tolerance, so this is a lower bound)")
    section.blocks.append(
        f"PAC-Bayes sharpness: the mean network's parameters moved by sigma' z, z ~ N(0, I) "
        f"({s.get('sharpness_samples')} draws per sigma', the same draws at every sigma'), the deterministic return J over "
        f"{s.get('sharpness_episodes')} episodes (the same episodes for every draw). J = {fmt_plain(base)}; "
        f"tolerance {fmt_plain(s.get('sharpness_tolerance'))} x |J| = {fmt_plain(row['sharpness_tolerance'])}; "
        f"the largest sigma' whose drop stays within it: {fmt_plain(row['sharpness_sigma'])}{bracket}.")
    rows = [(fmt_plain(r.sigma), fmt_plain(r.perturbed_return), fmt_plain(r.drop, scale=base),
             fmt_plain(r.drop_stderr)) for r in table.itertuples(index=False)]
    section.blocks.append(Table(("sigma'", "perturbed return", "drop", "drop stderr"), tuple(rows)))
    return section


def _answer_section(tables: dict[str, pd.DataFrame], row: pd.Series) -> Section:
    """First: what the strongest observation noise costs the deterministic policy (else the sampled
    one), and the headline complexity, Fisher and sharpness numbers, quoted from the tables."""
    section = Section("Answer")
    section.blocks.append("**Question.** How robust is this policy to observation noise, and how complex and "
                          "how sharp is it?")
    parts = []
    risk = tables.get("excess_risk")
    if risk is not None and len(risk):
        mode = "deterministic" if (risk["mode"] == "deterministic").any() else str(risk["mode"].iloc[0])
        r = risk[risk["mode"] == mode].sort_values("obs_noise_std").iloc[-1]
        parts.append(f"at observation noise std {fmt_plain(r['obs_noise_std'])} ({mode} actions) the return falls "
                     f"from {fmt_plain(r['return_reference'])} to {fmt_plain(r['return'])}: an excess-risk rate of "
                     f"{_ci(r['excess_risk_rate'], r['excess_risk_rate_low'], r['excess_risk_rate_high'], 1.0)}")
    else:
        parts.append("no observation-noise grid for this env")
    parts.append(f"spectral-norm product {fmt_plain(row.get('spectral_product'))}, mean Fisher trace "
                 f"{fmt_plain(row.get('fisher_total_mean'))}, largest parameter noise sigma' within the sharpness "
                 f"tolerance {fmt_plain(row.get('sharpness_sigma'))}")
    section.blocks.append("**Answer.** " + "; ".join(parts) + ". Definitions and every value below.")
    return section


def measure_sections(tables: dict[str, pd.DataFrame], meta: dict) -> list[Section]:
    row = tables["complexity"].iloc[0]
    return [_answer_section(tables, row), _policy_section(meta), _noise_section(tables, meta),
            _complexity_section(row), _fisher_section(row), _sharpness_section(tables["sharpness"], row, meta)]


def write_measure_report(out: str | Path, tables: dict[str, pd.DataFrame], meta: dict) -> Path:
    """OUT/report/report.md and index.html; returns the path of report.md."""
    name = Path(str(meta.get("source", {}).get("path", "policy"))).name
    write_document(Path(out), f"entrolab measure: {name}", measure_sections(tables, meta))
    return Path(out) / "report.md"

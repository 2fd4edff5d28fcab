"""The robustness report (entrolab.studies.robustness.report via entrolab.study.report) on small synthetic studies (tables written here, so no training is needed).

The tables are made the way `entrolab.studies.robustness.tables.build_tables` makes them from unit outputs:
per-episode returns -> summary returns, `entrolab.measures.robustness.excess_risk` -> excess_risk,
`entrolab.studies.robustness.tables.correlation_table` -> correlations.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from entrolab.measures.robustness import excess_risk
from entrolab.stats import bootstrap_ci
from entrolab.report.document import fmt, fmt_ci
from entrolab.studies.robustness.tables import MEASURES, correlation_table, trend_tables
from entrolab.study.config import CONFIG_FILE, config_json, parse_config
from entrolab.study.report import write_report

NUM_RESAMPLES = 50


def make_study(study_dir: Path, *, alphas, seeds=3, bounding=("clip",), action_noise=(0.0, 0.2), modes=None,
               nan_measures=(), correlations=True) -> dict[str, pd.DataFrame]:
    """Write config.json and tables/*.parquet of a fake finished study; returns the tables."""
    modes = list(modes or ["deterministic", "stochastic"])
    config = parse_config(dict(
        name="synthetic", env="lorenz", seeds=seeds, alphas=list(alphas), env_options={"max_steps_in_episode": 20},
        train=dict(steps=2048, num_envs=4, num_steps=64, minibatches=2, bounding=list(bounding)),
        evaluate=dict(episodes=6, obs_noise=[0.0, 0.1, 0.3], action_noise=list(action_noise), modes=modes,
                      bootstrap=NUM_RESAMPLES),
    ))
    study_dir.mkdir(parents=True)
    (study_dir / CONFIG_FILE).write_text(config_json(config))
    rng = np.random.default_rng(0)
    families = [("obs_noise", "obs_noise_std", config.evaluate.obs_noise)]
    if config.evaluate.action_noise:
        families.append(("action_noise", "action_noise_std", config.evaluate.action_noise))

    runs, curves, episodes, complexity, fisher = [], [], [], [], []
    for v in config.variants():
        policy = 0
        for alpha in config.alphas:
            for seed in range(seeds):
                key = dict(variant=v["variant"], run_id=f"alpha={alpha:g}_seed={seed}", alpha=alpha, seed=seed)
                skill = -10.0 + 3.0 * alpha + rng.normal(0.0, 0.5)
                runs.append({**key, "eval_return_det_mean": skill, "eval_return_sto_mean": skill - 0.5})
                steps = np.arange(1, 6) * 256.0
                curves.append(pd.DataFrame({**key, "update": np.arange(5), "env_steps": steps,
                                            "episode_return": skill * (1 + 1 / np.arange(1, 6)),
                                            "ent_coef": alpha * (1 - steps / 2048), "entropy": 1.0 + alpha}))
                for family, param, values in families:
                    for init in config.inits:
                        for mode in modes:
                            base = skill + rng.normal(0.0, 0.2, size=6) - (0.5 if mode == "stochastic" else 0.0)
                            for value in values:
                                episodes.append(pd.DataFrame({
                                    **key, "policy_index": policy, "family": family, "param": param, "value": value,
                                    "nominal": 0.0, "init": init, "init_std": 0.1, "mode": mode,
                                    "episode": np.arange(6),
                                    "return": base - (1 + alpha) * value * rng.uniform(0.5, 1.5, size=6)}))
                measures = {m: float(np.exp(rng.normal(1.0 + alpha, 1.0))) for m in MEASURES}
                measures["log_std"] = -0.5 + alpha
                for m in nan_measures:
                    measures[m] = np.nan
                complexity.append({**key, **measures})
                fisher.append(pd.DataFrame({**key, "state": np.arange(40),
                                            "fisher_total": np.exp(rng.normal(1.0 + alpha, 1.0, size=40)),
                                            "fisher_mean": rng.uniform(size=40)}))
                policy += 1
    episodes = pd.concat(episodes, ignore_index=True)
    keys = ["variant", "run_id", "alpha", "seed"]
    group = keys + ["policy_index", "family", "param", "value", "nominal", "init", "init_std", "mode"]
    returns = episodes.groupby(group, as_index=False).agg(mean_return=("return", "mean"),
                                                          std_return=("return", "std"),
                                                          num_episodes=("return", "size"))
    risk = []
    for variant, sub in episodes.groupby("variant"):
        r = excess_risk(sub.drop(columns=keys), num_resamples=NUM_RESAMPLES, rng=0)
        r = r.merge(sub[["policy_index"] + keys].drop_duplicates(), on="policy_index")
        risk.append(r)
    risk = pd.concat(risk, ignore_index=True)
    complexity = pd.DataFrame(complexity)
    tables = dict(runs=pd.DataFrame(runs), curves=pd.concat(curves, ignore_index=True), returns=returns,
                  episodes=episodes, excess_risk=risk, complexity=complexity,
                  fisher_states=pd.concat(fisher, ignore_index=True))
    if correlations:
        tables["correlations"] = correlation_table(complexity, risk, NUM_RESAMPLES)
    tables["alpha_rates"], tables["trends"] = trend_tables(episodes, risk, NUM_RESAMPLES)
    (study_dir / "tables").mkdir()
    for name, df in tables.items():
        df.to_parquet(study_dir / "tables" / f"{name}.parquet", index=False)
    return tables


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def image_sources(index: Path) -> list[str]:
    parser = _Images()
    parser.feed(index.read_text())
    return parser.sources


def markdown_table(md: str, heading: str) -> list[dict[str, str]]:
    """The first table under `## heading` as a list of {column: cell}."""
    section = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    columns = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(columns, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def check_images(report: Path) -> list[str]:
    sources = image_sources(report / "index.html")
    assert sources, "the report has no figures"
    for src in sources:
        assert not src.startswith(("/", "http")), src  # relative: the page opens without a server
        path = report / src
        assert path.suffix == ".png" and path.is_file(), src
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)) == sorted(sources)  # the same figures
    return sources


def test_report_of_a_synthetic_study(tmp_path):
    study = tmp_path / "study"
    tables = make_study(study, alphas=[0.0, 0.05, 0.2], nan_measures=["sharpness_sigma"])
    # a partly NaN measure and a NaN rate must be left out, not crash
    complexity = tables["complexity"]
    complexity.loc[0, "path_norm"] = np.nan
    complexity.to_parquet(study / "tables" / "complexity.parquet", index=False)

    index = write_report(study)
    report = study / "report"
    assert index == report / "index.html" and index.is_file()
    md = (report / "report.md").read_text()
    sources = check_images(report)
    names = {Path(s).name for s in sources}
    assert {"excess_risk_obs_noise.png", "excess_risk_action_noise.png", "complexity_vs_alpha.png",
            "fisher_trace.png", "complexity_vs_risk.png", "learning_curves.png"} <= names
    assert "sharpness_sigma: NaN for every policy" in md
    assert "path_norm: NaN for 1 of 9 policies" in md
    html = index.read_text()
    assert "<details>" in html and "kendall" in html.lower()

    # the nominal returns: mean over policies of (mean over inits of the obs_noise = 0 return), bootstrap CI
    returns = tables["returns"]
    nominal = returns[(returns["family"] == "obs_noise") & (returns["value"] == 0.0)]
    per_policy = nominal.groupby(["run_id", "alpha", "mode"], as_index=False)["mean_return"].mean()
    rows = markdown_table(md, "Evaluation return at the nominal condition")
    assert [r["alpha"] for r in rows] == ["0", "0.05", "0.2"]
    for row in rows:
        for mode in ("deterministic", "stochastic"):
            sub = per_policy[(per_policy["alpha"] == float(row["alpha"])) & (per_policy["mode"] == mode)]
            assert row["policies"] == "3"
            assert row[f"{mode} return"] == fmt_ci(*bootstrap_ci(sub["mean_return"], num_resamples=NUM_RESAMPLES))
            assert float(row[f"{mode} return"].split(" ")[0]) == pytest.approx(sub["mean_return"].mean(), rel=1e-3)

    # the headline correlations: obs_noise, deterministic, largest sigma
    corr = tables["correlations"]
    head = corr[(corr["family"] == "obs_noise") & (corr["value"] == 0.3) & (corr["mode"] == "deterministic")
                & (corr["scope"] == "overall")].set_index("measure")
    rows = markdown_table(md, "Rank correlations of complexity with the excess-risk rate")
    assert {r["measure"] for r in rows} == set(head.index)
    for row in rows:
        h = head.loc[row["measure"]]
        assert row["Kendall tau overall [95% CI]"] == fmt_ci(h["kendall_tau"], h["kendall_tau_low"],
                                                             h["kendall_tau_high"])

    # rebuilding replaces the report (no stale figures, same text)
    (report / "figures" / "stale.png").write_bytes(b"x")
    write_report(study)
    assert not (report / "figures" / "stale.png").exists()
    assert (report / "report.md").read_text() == md


def test_the_report_opens_with_an_answer_quoting_the_tables(tmp_path):
    """The first section answers the study's question from the trends and alpha_rates tables: the
    Kendall tau of the headline target (obs_noise, deterministic, the largest sigma) with its interval,
    the rate at the smallest and at the best alpha, and the trend figure."""
    study = tmp_path / "study"
    tables = make_study(study, alphas=[0.0, 0.05, 0.2])
    write_report(study)
    md = (study / "report" / "report.md").read_text()
    first = md.split("\n## ", 2)[1]
    assert first.startswith("Answer\n")
    cond = lambda df: df[(df["family"] == "obs_noise") & np.isclose(df["value"], 0.3)  # noqa: E731
                         & (df["mode"] == "deterministic")]
    tr = cond(tables["trends"]).iloc[0]
    assert fmt_ci(tr["kendall_tau"], tr["kendall_tau_low"], tr["kendall_tau_high"]) in first
    verdict = ("falls as alpha grows" if tr["kendall_tau_high"] < 0 else
               "grows with alpha" if tr["kendall_tau_low"] > 0 else "covers 0")
    assert verdict in first
    rates = cond(tables["alpha_rates"]).sort_values("alpha")
    low, best = rates.iloc[0], rates.loc[rates["rate"].idxmin()]
    assert f"rate at alpha = 0: {fmt_ci(low['rate'], low['rate_low'], low['rate_high'])}" in first
    if best["alpha"] != 0.0:
        assert fmt_ci(best["rate"], best["rate_low"], best["rate_high"]) in first
    assert "figures/alpha_trend.png" in first


def test_report_with_one_alpha_two_variants_and_no_correlations(tmp_path):
    study = tmp_path / "study"
    tables = make_study(study, alphas=[0.1], seeds=2, bounding=("clip", "tanh"), action_noise=(),
                        modes=["stochastic"], nan_measures=list(MEASURES)[:3], correlations=False)
    write_report(study)
    report = study / "report"
    check_images(report)
    md = (report / "report.md").read_text()
    assert "tables missing or empty: correlations" in md
    assert not (report / "figures" / "excess_risk_action_noise.png").exists()
    rows = markdown_table(md, "Evaluation return at the nominal condition")
    assert {r["variant"] for r in rows} == set(tables["runs"]["variant"]) and len(rows) == 2
    assert "deterministic return" not in rows[0] and all(r["stochastic return"] != "n/a" for r in rows)
    assert "spectral_product: NaN for every policy" in md


def test_formatting():
    assert fmt(float("nan")) == "n/a" and fmt(None) == "n/a" and fmt(-6.979823) == "-6.98"
    assert fmt(-2.776e-17) == "0" and fmt(0.0) == "0" and fmt(-0.0) == "0" and fmt(3e-9) == "3e-09"
    assert fmt_ci(1.0, 0.5, 2.0) == "1 [0.5, 2]" and fmt_ci(float("nan"), 0.0, 1.0) == "n/a"


def test_attack_section_states_seed_intervals_of_each_attack():
    from entrolab.studies.robustness.report import Palette, _attack_section

    rng = np.random.default_rng(0)
    complexity = pd.DataFrame({"variant": "v", "alpha": np.repeat([0.0, 0.1], 4), "seed": np.tile(range(4), 2),
                               "attack_excess_eps0.5": rng.normal(2.0, 0.5, 8),
                               "random_excess_eps0.5": rng.normal(0.5, 0.5, 8)})
    palette = Palette((0.0, 0.1), ("v",))
    section = _attack_section(complexity, palette, 200)
    table = section.blocks[-1]
    assert table.columns == ("epsilon", "alpha", "episodes: per-state attack", "episodes: random")
    assert len(table.rows) == 2
    first = complexity[complexity["alpha"] == 0.0]["attack_excess_eps0.5"].to_numpy()
    assert table.rows[0][2] == fmt_ci(*bootstrap_ci(first, np.mean, num_resamples=200, rng=0))
    assert _attack_section(complexity.drop(columns=["attack_excess_eps0.5", "random_excess_eps0.5"]), palette, 200) is None


def test_the_report_counts_diverged_policies():
    from entrolab.studies.robustness.report import _header

    config = parse_config({"name": "t", "env": "lorenz", "alphas": [0.0, 0.1]})
    runs = pd.DataFrame({"variant": "v", "run_id": ["a", "b", "c"], "seed": [0, 1, 2],
                         "diverged_at_step": [np.nan, 512.0, np.nan]})
    notes = [b for b in _header(config, {"runs": runs}).blocks if isinstance(b, str)]
    assert any("1 of 3 policies diverged" in n and "v/b" in n for n in notes)
    notes = [b for b in _header(config, {"runs": runs.assign(diverged_at_step=np.nan)}).blocks if isinstance(b, str)]
    assert not any("diverged" in n for n in notes)


def test_policy_rates_by_hand():
    """The per-policy rate is the mean over initial distributions of the non-reference conditions
    (catches a max instead of the mean, and reference rows kept)."""
    from entrolab.studies.robustness.schema import policy_rates

    rows = []
    for run, alpha, seed in [("a", 0.0, 0), ("b", 0.1, 0)]:
        for init, base in [("C+", 1.0), ("C-", 3.0)]:
            for value, rate in [(0.0, 0.0), (0.2, base + (alpha > 0)), (0.5, 2 * base)]:
                rows.append({"variant": "v", "run_id": run, "alpha": alpha, "seed": seed, "family": "obs_noise",
                             "param": "obs_noise_std", "value": value, "reference_value": 0.0, "mode": "deterministic",
                             "init": init, "excess_risk_rate": rate})
    got = policy_rates(pd.DataFrame(rows)).set_index(["run_id", "value"])["excess_risk_rate"]
    assert sorted(got.index) == [("a", 0.2), ("a", 0.5), ("b", 0.2), ("b", 0.5)]  # no reference rows
    assert got[("a", 0.2)] == 2.0 and got[("b", 0.2)] == 3.0  # (1 + 3) / 2 and (2 + 4) / 2
    assert got[("a", 0.5)] == 4.0 and got[("b", 0.5)] == 4.0

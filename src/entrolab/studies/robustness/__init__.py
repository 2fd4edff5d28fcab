"""The robustness study (``kind = "robustness"``, the default): the main study of entrolab.

PPO agents trained across entropy coefficients, seeds and training variants
(`config.RobustnessConfig`), evaluated under observation noise, actuation noise
and dynamics shifts (excess risk, `entrolab.measures.robustness`), measured
(norms, Lipschitz, sharpness, Fisher trace), and the two related by rank
correlations. Modules: `config` (the TOML schema), `units` (train / evaluate /
measures), `tables` (tidy Parquet tables), `schema` (names shared by tables and
report), `report` (sections, from the tables only). `KIND` is what the study
engine runs (`entrolab.study.kinds`).

Study directory: ``train/VARIANT/`` (checkpoints/, runs.parquet,
metrics.parquet), ``units/evaluate/VARIANT/FAMILY/`` and
``units/measures/VARIANT/`` (per-unit outputs), ``tables/*.parquet``,
``report/``.
"""

from entrolab.study.kinds import Kind
from entrolab.studies.robustness import report, schema, tables, units
from entrolab.studies.robustness.config import RobustnessConfig

KIND = Kind(name="robustness", config_model=RobustnessConfig, tables=schema.TABLES, plan=units.plan,
            execute=units.execute, output_path=units.output_path, build_tables=tables.build_tables,
            report=report.report)

__all__ = ["KIND", "RobustnessConfig"]

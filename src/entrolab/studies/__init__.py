"""Study kinds: one package per kind of study, each a plug-in of the study engine.

Each package implements `entrolab.study.kinds.StudyKind` (its config model,
plan, unit execution, tables, report sections) and is registered by one entry
in `entrolab.study.kinds.KINDS`:

- `robustness`: entropy coefficients x seeds x training variants; excess risk
  under perturbations, complexity measures, and their correlation;
- `comparison`: learning algorithms x tasks x seeds; IQMs, probabilities of
  improvement, learning curves, soft versus plain Q landscapes.

A kind may import the engine (`entrolab.study`), measures, agents and envs;
the engine never imports a kind, and a kind's report module reads tables only.
"""

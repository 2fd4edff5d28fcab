#!/usr/bin/env bash
# Run study presets on a lent accelerator machine (the `device` tool), then pack
# each study directory into $OUT so that it can be finished (resumed) or
# re-reported here:  entrolab study CONFIG --out DIR  /  entrolab report DIR.
#   usage: bash docs/scripts/device_study.sh SECONDS PRESET [PRESET ...]
# That machine has JAX with CUDA but not every dependency: the missing wheels
# travel in .whl/ (see /work/.library/device/README.md).
set -u
budget=$1; shift
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 ENTROLAB_JAX_CACHE=/tmp/jax_cache
export JAX_DEFAULT_MATMUL_PRECISION=float32   # no TF32 in the policies' matmuls
nvidia-smi -L
python3 -c "import jax; print(jax.__version__, jax.devices())"
start=$(date +%s)
for preset in "$@"; do
  left=$(( budget - ($(date +%s) - start) ))
  if [ "$left" -le 20 ]; then echo "no time left for $preset"; break; fi
  echo "== $preset ($left s left)"
  timeout "$left" python3 -m entrolab.cli study "configs/$preset.toml" --out "runs/$preset" --no-report
  echo "== $preset: exit $?"
  python3 - "$preset" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"runs/{sys.argv[1]}/registry.sqlite")
for row in db.execute("SELECT id, state, wall_s FROM units ORDER BY seq"):
    print(*row)
PY
  tar czf "$OUT/$preset.tgz" --exclude .jax_cache --exclude .scratch -C runs "$preset"
done
ls -la "$OUT"

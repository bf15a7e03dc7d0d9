"""bench/gpu.sh runs unchanged without a GPU (its small cpu profile) and prints one row per core benchmark."""
import os
import shutil
import subprocess

from tests.helpers import slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = ("raw bound", "ig (16 steps)", "ig+idgi", "bfloat16", "gradcam", "gradcam++", "iia2", "sic_aic_idgi, jobs=1",
         "sic_aic_idgi, jobs=all cores", "gae", "attention_rollout", "iia_vit")


@slow("bench/gpu.sh's cpu profile: about 2 minutes on a busy 2-core machine")
def test_gpu_sh_runs_its_cpu_profile(tmp_path):
    assert shutil.which("bash")
    out = tmp_path / "suite.md"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the cpu profile even where a GPU is present
    run = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu.sh"), "cpu", "--out", str(out)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    table = out.read_text()
    assert "profile cpu" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    for case in CASES:
        assert any(case in row for row in rows), case
    assert os.path.isfile(tmp_path / "suite.json")

#!/usr/bin/env bash
# The core benchmarks on one machine in one table (bench/suite.py): IG vs its raw bound, ig+idgi, bfloat16 vs
# float32, Grad-CAM(++), IIA, SIC/AIC at jobs=1 vs all cores, ViT methods. Installs nothing: it needs only
# what `pip install -e .[test]` installed.
#
#   bash bench/gpu.sh            # one NVIDIA GPU: the gpu profile (MobileNetV2 224, 32 images, ViT-B/16),
#                                # at most 5 minutes; no GPU: the small cpu profile (demo models)
#   bash bench/gpu.sh cpu        # force a profile; further arguments go to bench/suite.py (--out FILE, --repeats N)
#   PYTHON=/path/to/python bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-auto}"
[ $# -gt 0 ] && shift
if [ "$profile" = auto ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then profile=gpu; else profile=cpu; fi
fi
limit=300  # the issue's 5 minutes
[ "$profile" = cpu ] && limit="${TFXATTR_SUITE_LIMIT:-900}"  # a shared 2-core CPU is slower
echo "bench/gpu.sh: profile $profile" >&2
PYTHONPATH=. exec timeout "$limit" "${PYTHON:-python}" bench/suite.py --profile "$profile" "$@"

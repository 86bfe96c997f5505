#!/usr/bin/env bash
# Here, after the device check: records what came back from the device machine (the folder the device tool gives, with
# figures.md and costs.json) in docs/benchmarks.md and bench/gpu/costs.json (which bench/jobs's scheduling simulation reads).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
from=${1:?usage: bash bench/gpu/record.sh FOLDER (the files of the device run: figures.md, costs.json)}
test -f "$from/figures.md" && test -f "$from/costs.json"
cp "$from/costs.json" "$root/bench/gpu/costs.json"
python3 - "$root/docs/benchmarks.md" "$from/figures.md" <<'PY'
import sys
doc, figures = sys.argv[1], open(sys.argv[2]).read().strip() + "\n"
text = open(doc).read()
start, end = "<!-- gpu-device-check:start -->", "<!-- gpu-device-check:end -->"
a, b = text.index(start) + len(start), text.index(end)
open(doc, "w").write(text[:a] + "\n" + figures + text[b:])
PY
echo "recorded in docs/benchmarks.md and bench/gpu/costs.json"

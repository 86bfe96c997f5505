#!/usr/bin/env bash
# On the device machine: keeps the carried folder .gpu/K in .gpu-stage/, which stays there between calls while the
# machine is warm (it is ignored, and not carried, so nothing replaces it).
set -euo pipefail
k=${1:?usage: bash bench/gpu/stage.sh K (the number of the carried folder .gpu/K)}
mkdir -p .gpu-stage
cp ".gpu/$k"/* .gpu-stage/
ls -la .gpu-stage

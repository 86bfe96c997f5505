#!/usr/bin/env bash
# The GPU device check, on the device machine, after every folder of bench/gpu/prepare.sh was staged (bench/gpu/stage.sh).
# Refuses clearly where there is no NVIDIA GPU. Unpacks the GPU build, puts the CUDA 13 and cuDNN 9 libraries of the
# machine's Python packages on the library path, generates the SD 1.5-shaped fp16 pipeline on the machine and measures
# it (bench/Atelier.Bench.Gpu). Writes figures.md, costs.json and the log to $OUT (or bench/gpu/out).
set -euo pipefail
out=${OUT:-bench/gpu/out}
mkdir -p "$out"
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  echo "no NVIDIA GPU here (nvidia-smi finds none): the device check runs on a lent GPU machine; see bench/gpu/README.md" >&2
  exit 2
fi
nvidia-smi -L
test -f .gpu-stage/bundle.sha256 || { echo "nothing staged: run bench/gpu/prepare.sh here, then bench/gpu/stage.sh K there for each folder" >&2; exit 2; }
cat .gpu-stage/part-* > /tmp/atelier-gpu.tar.zst
if [ "$(sha256sum /tmp/atelier-gpu.tar.zst | awk '{print $1}')" != "$(cat .gpu-stage/bundle.sha256)" ]; then
  echo "the staged parts do not make the pack that was prepared (a part is missing or stale): stage every folder again" >&2
  ls -la .gpu-stage >&2
  exit 2
fi
rm -rf /tmp/atelier-gpu && mkdir -p /tmp/atelier-gpu
# The device machine has no zstd program (seen 2026-11-29); its Python's pyarrow reads zstd frames.
if command -v zstd >/dev/null; then
  zstd -q -d -c /tmp/atelier-gpu.tar.zst | tar -C /tmp/atelier-gpu -xf -
else
  python3 -c 'import shutil, sys, pyarrow as pa; shutil.copyfileobj(pa.CompressedInputStream(pa.OSFile(sys.argv[1]), "zstd"), sys.stdout.buffer, 1 << 20)' \
    /tmp/atelier-gpu.tar.zst | tar -C /tmp/atelier-gpu -xf -
fi
# ONNX Runtime 1.31's CUDA provider needs libcudart/libcublas(Lt) 13, libcurand 10, libcufft and cuDNN 9: the machine
# has them in its Python environment's nvidia-* packages.
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
libs=$( [ -n "$site" ] && find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':' || true)
for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64; do [ -d "$d" ] && libs="$libs$d:"; done
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:-}"
echo "== libraries the CUDA provider cannot find (none is good):"
ldd /tmp/atelier-gpu/libonnxruntime_providers_cuda.so | grep 'not found' | tee "$out/missing-libraries.txt" || true
export DOTNET_gcServer=0
set -o pipefail
# ATELIER_GPU_ARGS adds options: "--parity" runs the features' check (each feature on the device against the CPU,
# parity.md) instead of the figures.
/tmp/atelier-gpu/Atelier.Bench.Gpu --device "${ATELIER_GPU_DEVICE:-cuda:0}" --steps 20 --size 512 --out "$out" \
  --models /tmp/atelier-gpu-models ${ATELIER_GPU_ARGS:-} 2>&1 | tee "$out/log.txt"

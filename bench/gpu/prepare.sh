#!/usr/bin/env bash
# Prepares the GPU device check, here (where NuGet is reachable): publishes bench/Atelier.Bench.Gpu with the GPU build
# switch, self-contained for linux-x64 (the device machine has no .NET), packs it with zstd and cuts the pack into
# folders .gpu/1, .gpu/2, … of at most 50 MiB each, since one device call carries at most 64 MiB. bench/gpu/README.md
# says how the folders travel and how the check runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
rm -rf .gpu
mkdir -p .gpu
echo "== publishing the GPU build of the device check (ONNX Runtime's CUDA package, ~250 MB the first time)"
dotnet publish bench/Atelier.Bench.Gpu -c Release -p:AtelierGpu=cuda -r linux-x64 --self-contained -nologo -v quiet -o .gpu/build
test -f .gpu/build/libonnxruntime_providers_cuda.so || { echo "the publish has no CUDA provider: was -p:AtelierGpu=cuda applied?" >&2; exit 1; }
echo "== packing"
tar -C .gpu/build -cf - . | zstd -q -T0 -12 -o .gpu/bundle.tar.zst
(cd .gpu && split -b 50m -d -a 1 bundle.tar.zst part-)
n=0
for part in .gpu/part-*; do
  n=$((n + 1))
  mkdir -p ".gpu/$n"
  mv "$part" ".gpu/$n/"
done
sha256sum .gpu/bundle.tar.zst | awk '{print $1}' > .gpu/bundle.sha256
cp .gpu/bundle.sha256 .gpu/1/
rm -rf .gpu/build .gpu/bundle.tar.zst
echo "== $n folders to carry, one per device call: $(ls -d .gpu/[0-9]* | tr '\n' ' ')"

#!/usr/bin/env bash
# Model delivery benchmark (issue 15, item 5): the first job of a fresh worker for a model that is not in its cache
# (fetched through the server) against one that is (verified by its marker, loaded from the cache), and reading a model
# file from the worker's cache against the object store directly and the worker route. Starts the server and the
# workers in-process (SQLite, local store, in a temp folder) and writes its section of docs/benchmarks.md.
# Usage: bash bench/delivery/run.sh [MiB of the model's large file, default 256]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
mib=${1:-256}
dotnet build bench/Atelier.Bench.Delivery -c Release -nologo -v quiet -clp:ErrorsOnly
timeout 900 dotnet bench/Atelier.Bench.Delivery/bin/Release/net10.0/Atelier.Bench.Delivery.dll "bash bench/delivery/run.sh $mib" "$mib"

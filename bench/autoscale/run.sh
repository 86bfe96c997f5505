#!/usr/bin/env bash
# Autoscaling benchmark (issue 15, "Numbers"): on the local backend for real (a real `atelier serve` on loopback with a
# temp data folder, the autoscaler every second, no embedded worker; a unit of the noop engine at 0 replicas: single jobs
# for one replica's cold start, then N jobs at once: time to first lease, time to all done, replicas over time), then a
# deterministic simulation of a bursty day through the real ScaleRule.Decide with the measured job time and cold start,
# against a fixed fleet sized for the peak. Writes the section "Autoscaling (issue 15)" of docs/benchmarks.md.
# Bounded: every wait in the real run has a deadline, the server is stopped at the end whatever happens.
# Usage: bash bench/autoscale/run.sh [jobs in the burst, default 50]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
jobs=${1:-50}
dotnet build bench/Atelier.Bench.Autoscale -c Release -nologo -v quiet -clp:ErrorsOnly
timeout 600 dotnet bench/Atelier.Bench.Autoscale/bin/Release/net10.0/Atelier.Bench.Autoscale.dll "bash bench/autoscale/run.sh $jobs" --jobs "$jobs"

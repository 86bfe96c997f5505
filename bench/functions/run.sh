#!/usr/bin/env bash
# Functions benchmark (issue 14): router overhead against direct calls to the same instance program, cold start of an
# a1111-engine function against warm, and a step load on one function (instances over time, 503s, lost requests).
# Starts the server in-process (SQLite in a temp folder) and writes its section of docs/benchmarks.md.
# Usage: bash bench/functions/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
dotnet build bench/Atelier.Bench.Functions -c Release -nologo -v quiet -clp:ErrorsOnly
timeout 300 dotnet bench/Atelier.Bench.Functions/bin/Release/net10.0/Atelier.Bench.Functions.dll "bash bench/functions/run.sh"

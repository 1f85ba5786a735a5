#!/usr/bin/env bash
# Every benchmark, one after another. Figures, not pass/fail: read them beside their baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
python -m bench.boot_bench "$@"
python -m bench.dashboard_bench
python -m bench.web_bench
python -m bench.console_bench

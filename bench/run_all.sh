#!/usr/bin/env bash
# Every benchmark, one after another. Figures, not pass/fail: read them beside their baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
python -m bench.boot_bench "$@"
python -m bench.dashboard_bench
python -m bench.web_bench
python -m bench.console_bench
python -m bench.metrics_bench
python -m bench.scheduler_bench --hosts 1000 --decisions 1000
python -m bench.scheduler_bench --hosts 10000 --decisions 600
python -m bench.guest_stats_bench
# Real guests on simulated hosts: root and the tiny guest image (make image) are needed.
if [ "$(id -u)" = 0 ] && [ -f var/guest/kumo-tiny.qcow2 ]; then
    python -m bench.net_bench
else
    echo "net_bench skipped: needs root and var/guest/kumo-tiny.qcow2 (make image)"
fi
# Nova beside Kumo in the same sitting (../shared/nova-anchor): only when asked, it takes ~25 min.
if [ "${NOVA_BENCH:-0}" = 1 ]; then
    python -m bench.nova_side
fi
python -m bench.report
python -m bench.rally_bench  # rally-openstack scenarios, unchanged; HTML report: artifacts/bench/rally/

#!/usr/bin/env bash
# Every benchmark, one after another. Figures, not pass/fail: read them beside their baselines.
#   NOVA_BENCH=1   also measure real Nova beside Kumo (bench/nova_side.py, ../shared/nova-anchor)
#   BENCH_GOALS=1  only the benches whose figures make issue 16's goal table, then the report
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Each step says the load average it started and ended at: a figure is read beside its load.
step() {
    echo "== $* (load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC)"
    "$@"
    echo "== done: $* (load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC)"
}
goals=${BENCH_GOALS:-0}
# Nova beside Kumo in the same sitting (../shared/nova-anchor): only when asked, ~20 min. First,
# so that the figures the others are read against are taken before anything else can fail.
if [ "${NOVA_BENCH:-0}" = 1 ]; then
    step python -m bench.nova_side
fi
step python -m bench.boot_bench "$@"
[ "$goals" = 1 ] || step python -m bench.dashboard_bench
[ "$goals" = 1 ] || step python -m bench.web_bench
step python -m bench.console_bench
[ "$goals" = 1 ] || step python -m bench.metrics_bench
# RunInstances to running through boto3 beside the same boot through openstacksdk (issue 18).
[ "$goals" = 1 ] || step python -m bench.ec2_bench
# bench/nova_side.py times the scheduler at 1,000 hosts itself, beside Placement's query.
[ "${NOVA_BENCH:-0}" = 1 ] || step python -m bench.scheduler_bench --hosts 1000 --decisions 1000
step python -m bench.scheduler_bench --hosts 10000 --decisions 600
if [ "$goals" != 1 ]; then
    step python -m bench.guest_stats_bench
    # Real guests on simulated hosts: root and the tiny guest image (make image) are needed.
    if [ "$(id -u)" = 0 ] && [ -f var/guest/kumo-tiny.qcow2 ]; then
        step python -m bench.net_bench
    else
        echo "net_bench skipped: needs root and var/guest/kumo-tiny.qcow2 (make image)"
    fi
fi
python -m bench.report
# rally-openstack scenarios, unchanged; HTML report: artifacts/bench/rally/
[ "$goals" = 1 ] || step python -m bench.rally_bench

#!/usr/bin/env bash
# The whole test suite as VPOD_TEST_SHARDS parts (default 2) that run at once, one pytest
# process each (pytest --shard K/N, tests/support/shards.py: split by file on measured
# time): most of the suite's time is waiting (leases, settle times, daemons starting),
# not computing. Called by `contrib/dev.sh test` without pytest options, after the
# install and mypy; VPOD_TEST_SHARDS=1 runs one process. Each part's log ends with its
# 25 slowest tests (--durations=25), so a new slow test shows.
#   contrib/test-parts.sh PYTHON
set -euo pipefail
python="$1"
cd "$(dirname "$0")/.."
shards="${VPOD_TEST_SHARDS:-2}"
if [ "$shards" -le 1 ]; then
    exec "$python" -m pytest --durations=25
fi
logs="$(mktemp -d)"
# Job control on: a background job of a script otherwise starts with SIGINT ignored, and
# the tests that interrupt a vpod command (Ctrl-C exits 130) would see it ignore them.
set -m
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for k in $(seq 1 "$shards"); do
    "$python" -m pytest --shard "$k/$shards" --basetemp "$logs/tmp-$k" --durations=25 >"$logs/part-$k.log" 2>&1 &
    pids+=("$!")
done
status=0
for k in $(seq 1 "$shards"); do
    code=0
    wait "${pids[$((k - 1))]}" || code=$?
    echo "===== part $k of $shards (pytest --shard $k/$shards): exit status $code ====="
    cat "$logs/part-$k.log"
    [ "$code" -eq 0 ] || status=1
done
if [ "$status" -eq 0 ]; then
    rm -rf --one-file-system "$logs"
else
    echo "the failed parts' test folders are kept in $logs (tmp-K: pytest --basetemp of part K)"
fi
exit "$status"

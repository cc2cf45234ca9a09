#!/bin/sh
# The container shim: starts one container process in its own process group, writes its
# output to DIR/log in the CRI log format (RFC3339Nano time, stream, tag, line), and records its
# pid and exit code in files. It outlives the agent, so a restarted agent can adopt the container.
# usage: shim.sh DIR -- COMMAND...
# DIR is fresh (the agent clears it), so starting takes no more processes than the fifos need.
dir=$1
shift 2
mkfifo "$dir/out" "$dir/err"
logger() {
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s %s F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$1" "$line"
  done >>"$dir/log"
}
logger stdout <"$dir/out" &
logger stderr <"$dir/err" &
setsid "$@" >"$dir/out" 2>"$dir/err" </dev/null &
pid=$!
# one write(2) of a few bytes: the agent reads either nothing yet or the whole pid
echo "$pid" >"$dir/pid"
wait "$pid"
code=$?
# like the end of a pid namespace: what the container left running in its group goes with it
kill -KILL -"$pid" 2>/dev/null
wait
rm -f "$dir/out" "$dir/err"
echo "$code $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/exit.tmp" && mv "$dir/exit.tmp" "$dir/exit"

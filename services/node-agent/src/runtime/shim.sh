#!/bin/sh
# The container shim: starts one container process in its own process group, writes its
# output to DIR/log in the CRI log format (RFC3339Nano time, stream, tag, line), and records its
# pid and exit code in files. It outlives the agent, so a restarted agent can adopt the container.
# usage: shim.sh DIR -- COMMAND...
# DIR is fresh (the agent clears it), so starting takes no more processes than the fifos need.
dir=$1
shift 2
mkfifo "$dir/out" "$dir/err"
# The shim holds both fifos open until the container is gone, so no open of them ever blocks: a
# container killed before it opened its output would otherwise leave the loggers waiting forever.
exec 3<>"$dir/out" 4<>"$dir/err"
logger() {
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s %s F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$1" "$line"
  done >>"$dir/log"
}
# (exec closes for good; redirections on a function call would keep saved copies open)
{ exec <"$dir/out" 3>&- 4>&- && logger stdout; } &
{ exec <"$dir/err" 3>&- 4>&- && logger stderr; } &
setsid "$@" >"$dir/out" 2>"$dir/err" </dev/null 3>&- 4>&- &
pid=$!
# one write(2) of a few bytes: the agent reads either nothing yet or the whole pid
echo "$pid" >"$dir/pid"
wait "$pid"
code=$?
# like the end of a pid namespace: what the container left running in its group goes with it
kill -KILL -"$pid" 2>/dev/null
# the loggers see the end of their input once the container's last writer is gone too
exec 3>&- 4>&-
wait
rm -f "$dir/out" "$dir/err"
echo "$code $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/exit.tmp" && mv "$dir/exit.tmp" "$dir/exit"

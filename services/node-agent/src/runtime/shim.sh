#!/bin/sh
# The container shim: starts one container process in its own process group, writes its
# output to DIR/log in the CRI log format (RFC3339Nano time, stream, tag, line), and records its
# pid and exit code in files. It outlives the agent, so a restarted agent can adopt the container.
# usage: shim.sh DIR -- COMMAND...
# DIR is fresh (the agent clears it), so starting takes no more processes than the fifos need.
dir=$1
shift 2
# the loggers need bash (Essential in Debian, so on every node image): without it, no container
command -v bash >/dev/null || { echo "shim: bash not found, container output has no logger" >&2; exit 127; }
mkfifo "$dir/out" "$dir/err"
# The shim holds both fifos open until the container is gone, so no open of them ever blocks: a
# container killed before it opened its output would otherwise leave the loggers waiting forever.
exec 3<>"$dir/out" 4<>"$dir/err"
# One logger per stream, in bash for its builtins: $EPOCHREALTIME and printf's %()T stamp a line
# without starting a process (date(1) was a fork and an exec per line), and one printf is one
# write(2) of a whole record, so the records of the two streams, appended to the same file, never
# mix (bash's stdout is line-buffered; only a line longer than its 4 KiB buffer goes out in
# pieces). bash reads a pipe a byte per read(2) unless given a count (read -N), which waits for
# that many bytes or, with a timeout, costs two system calls a byte: line by line costs least.
# One bash is started (stdout on 0, stderr on 5) and forks the stderr logger: a fork costs less
# than a second exec of bash. -p: the container's environment (BASH_ENV, SHELLOPTS, exported
# functions) is not the loggers'; POSIXLY_CORRECT and TMOUT would change how read works. The shim
# itself stays sh, as bash would add SHLVL and _ to the container's environment.
# shellcheck disable=SC2016
loggers='
set +o posix
unset TMOUT
export LC_ALL=C TZ=UTC0
log() {
  local line t s= sec=
  while IFS= read -r line || [[ -n $line ]]; do
    t=$EPOCHREALTIME
    [[ ${t%.*} == "$s" ]] || { s=${t%.*}; printf -v sec "%(%Y-%m-%dT%H:%M:%S)T" "$s"; }
    printf "%s.%s000Z %s F %s\n" "$sec" "${t#*.}" "$1" "$line"
  done
}
(exec <&5 5<&- && log stderr) &
exec 5<&-
log stdout
wait
'
bash -p -c "$loggers" loggers <"$dir/out" 5<"$dir/err" >>"$dir/log" 3>&- 4>&- &
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

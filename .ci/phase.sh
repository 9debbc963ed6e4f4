#!/usr/bin/env bash
# phase.sh NAME COMMAND...: runs one phase of `make test`, with a line
# before it and one after saying how long it took, so a long run shows
# where it is and where the time went.
set -uo pipefail
name=$1
shift
start=$SECONDS
echo "==> $name ..."
"$@"
rc=$?
took=$((SECONDS - start))
t=$(printf '%dm%02ds' $((took / 60)) $((took % 60)))
if [ "$rc" -eq 0 ]; then
	echo "==> $name: ok in $t"
else
	echo "==> $name: FAILED (exit $rc) after $t"
fi
exit "$rc"

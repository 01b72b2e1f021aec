#!/usr/bin/env bash
# identical.sh SCRIPT OUT [HISTORY...]: every output a change that promises "no change in behaviour"
# must keep byte-identical, written to OUT by SCRIPT: list (plain, cached, table), extract
# --source local and stats of every fixture session, and the demo. Run it with the script before
# and after the change and `diff -r` the two folders (only the demo's own paths may differ):
#   git show HEAD~1:.claude/scripts/session-analytics.py > /tmp/before.py
#   python3 tests/bench/generate.py /tmp/h-results --size 100M --shape results --seed 7
#   python3 tests/bench/generate.py /tmp/h-assistant --size 100M --shape assistant --seed 7
#   tests/bench/identical.sh /tmp/before.py /tmp/out-before /tmp/h-results/projects /tmp/h-assistant/projects
#   tests/bench/identical.sh .claude/scripts/session-analytics.py /tmp/out-after /tmp/h-results/projects ...
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
S=$(realpath "$1"); OUT=$(realpath -m "$2"); shift 2; rm -rf "$OUT"; mkdir -p "$OUT"
SH=$(realpath -m "${SESSION_ANALYTICS_SHARED:-$ROOT/../shared}")/fixtures/transcripts
export XDG_CACHE_HOME=$(mktemp -d)
i=0
for P in $SH/claude-code-log/projects $SH/real-2026/projects "$@" $ROOT/tests/fixtures/demo-projects; do
  i=$((i+1))
  python3 $S --phase list --json --no-cache --projects-dir $P > $OUT/list-$i.json 2> $OUT/list-$i.err
  python3 $S --phase list --json --projects-dir $P > $OUT/list-cached-$i.json 2>/dev/null
  python3 $S --phase list --projects-dir $P > $OUT/list-$i.txt 2>/dev/null
  python3 $S --phase extract --source local --no-cache --projects-dir $P --skills-dir $ROOT/tests/fixtures/skills --output-dir $OUT/extract-$i > /dev/null 2> $OUT/extract-$i.err
done
# stats of every fixture session
for P in $SH/claude-code-log/projects $SH/real-2026/projects $ROOT/tests/fixtures/demo-projects; do
  for f in $P/*/*.jsonl; do
    n=$(basename $f .jsonl); case $n in agent-*) continue;; esac
    python3 $S --phase stats --no-cache --projects-dir $P --session-id $n --skills-dir $ROOT/tests/fixtures/skills > $OUT/stats-$n.json 2> $OUT/stats-$n.err
  done
done
(cd $ROOT && make -s demo DEMO_OUT=$OUT/demo SCRIPT=$S > $OUT/demo.txt 2>&1)

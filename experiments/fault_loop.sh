#!/usr/bin/env bash
# Issue 26 acceptance: the fault tests 10 times in a row with a CPU hog (a busy Python loop on one of the 2 cores) beside them.
#   bash experiments/fault_loop.sh     (from the repository root, its virtual environment active; MELSCRIBE_DATA set)
set -u
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
python -c "while True: pass" & HOG=$!
FILES=$(find tests -name '*_faults.py' | sort)
echo "files: $FILES"
for i in $(seq 10); do
  start=$(date +%s)
  python -m pytest -q -p no:cacheprovider $FILES > /tmp/faults_$i.log 2>&1; rc=$?
  echo "run $i rc=$rc $(( $(date +%s) - start )) s: $(tail -1 /tmp/faults_$i.log)"
done
kill $HOG

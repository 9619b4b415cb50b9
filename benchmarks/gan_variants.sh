#!/usr/bin/env bash
# Run Problem 4's tests on every catalogued variant of gan.py; one summary line per variant.
#   benchmarks/gan_variants.sh                        # all tests (training included)
#   benchmarks/gan_variants.sh -m "not training"      # unit tests only
cd "$(dirname "$0")/.." || exit 1
names=$(.venv/bin/python -c "from autograder.validate import catalogue; print(' '.join(v.name for v in catalogue('gan')))")
for name in $names; do
  out=$(.venv/bin/python -m autograder.validate.try_variant gan "$name" -p no:cacheprovider "$@" 2>&1)
  head=$(echo "$out" | head -1)
  tail=$(echo "$out" | grep -E "passed|failed|error" | tail -1)
  failed=$(echo "$out" | grep -E "^FAILED" | sed -E 's/^FAILED [^:]*::([a-z_0-9]*).*/\1/' | tr '\n' ' ')
  echo "$head"
  echo "    -> $tail"
  [ -n "$failed" ] && echo "    failed: $failed"
done

#!/usr/bin/env bash
# Differential check of the proxy's HTTP/1 parsing against an independent
# model (tests/integration/http_differential.py): 5,000 generated request
# targets (both http.escaped_slashes modes), chunked bodies and request
# heads per seed, each run through tests/tools/http_driver (the proxy's own
# code) and through the model; any disagreement fails the test and is
# listed. DIFF_SEEDS and DIFF_COUNT change the seeds and the count.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

DRIVER=$OUTRIDER_BIN/../tests/http_driver
[ -x "$DRIVER" ] || die "no http_driver at $DRIVER"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for seed in ${DIFF_SEEDS:-1 2}; do
    rc=0
    "$PY" "$OUTRIDER_SRC/tests/integration/http_differential.py" "$DRIVER" "${DIFF_COUNT:-5000}" "$seed" \
        >"$T/diff-$seed.out" 2>&1 || rc=$?
    sed 's/^/# /' "$T/diff-$seed.out" | head -n 8
    if [ "$rc" = 0 ] && grep -q '^0 disagreements$' "$T/diff-$seed.out"; then
        pass "seed $seed: the proxy and the model agree on every target, chunked body and head"
    else
        mapfile -t lines < <(grep -E 'DISAGREE|Error|Traceback' "$T/diff-$seed.out" | head -n 10 | cut -c1-300)
        fail "seed $seed: the proxy and the model agree" "${lines[@]}"
    fi
    refused=$(sed -n 's/^path\/reject: [0-9]* targets, \([0-9]*\) refused$/\1/p' "$T/diff-$seed.out")
    if [ -n "$refused" ] && [ "$refused" -gt 0 ] && [ "$refused" -lt "${DIFF_COUNT:-5000}" ]; then
        pass "seed $seed: the targets mix refused and normalised ones ($refused refused)"
    else
        fail "seed $seed: the targets mix refused and normalised ones" "refused: ${refused:-?}"
    fi
done

#!/bin/sh
# run.sh: runs the libFuzzer harnesses for `make fuzz` and `make fuzz-regress`.
# Usage: run.sh fuzz SECONDS BUILD HARNESS...   each for SECONDS from its corpus
#        run.sh regress 0 BUILD HARNESS...      each corpus file once
# Seeds are read from tests/fuzz/corpus/HARNESS/ and never written there:
# new inputs go to BUILD/corpus/HARNESS/, a crash to BUILD/crashes/HARNESS/.
# Exits 1 naming every harness that failed and the input that did it.
set -u
mode=$1 seconds=$2 build=$3
shift 3
here=tests/fuzz
failed=""

for h in "$@"; do
	bin=$build/$h
	seeds=$here/corpus/$h
	log=$build/logs/$h.log
	mkdir -p "$build/logs" "$build/corpus/$h" "$build/crashes/$h"
	dict=""
	[ -f "$here/$h.dict" ] && dict="-dict=$here/$h.dict"
	case $mode in
	fuzz)
		echo "== $h: ${seconds}s"
		# The scratch directory first: libFuzzer writes new units there.
		# shellcheck disable=SC2086  # $dict is empty or one word
		nice -n 10 "$bin" -max_total_time="$seconds" -timeout=10 \
		    -max_len=4096 -print_final_stats=1 \
		    -artifact_prefix="$build/crashes/$h/" $dict \
		    "$build/corpus/$h" "$seeds" >"$log" 2>&1
		rc=$?
		grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" |
		    sed 's/^/   /'
		;;
	regress)
		# Each file once, as the test it now is; nothing is written.
		files=$(find "$seeds" -type f 2>/dev/null | sort)
		if [ -z "$files" ]; then
			echo "== $h: no corpus"
			failed="$failed $h"
			continue
		fi
		echo "== $h: $(echo "$files" | wc -l) inputs"
		# shellcheck disable=SC2086  # file names have no blanks
		"$bin" -runs=1 -artifact_prefix="$build/crashes/$h/" $files \
		    >"$log" 2>&1
		rc=$?
		;;
	*)
		echo "usage: $0 fuzz|regress SECONDS BUILD HARNESS..." >&2
		exit 2
		;;
	esac
	if [ "$rc" -ne 0 ]; then
		failed="$failed $h"
		echo "!! $h failed (exit $rc); its log: $log"
		grep -E 'ERROR: |invariant broken|runtime error|SUMMARY|Test unit written' \
		    "$log" | head -n 8 | sed 's/^/   /'
		for a in "$build/crashes/$h"/*; do
			[ -f "$a" ] && echo "   input: $a"
		done
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	echo "fuzz: reproduce with BUILD/HARNESS FILE; once fixed, add FILE to" \
	    "tests/fuzz/corpus/HARNESS/ (tests/fuzz/README.md)" >&2
	exit 1
fi
echo "fuzz: $mode passed: $*"

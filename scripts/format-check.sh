#!/bin/sh
# format-check.sh: how far FILES are from .clang-format, without changing them.
# Usage: format-check.sh FILE...   (CLANG_FORMAT names the binary)
# Prints, for each file clang-format would change, how many of its lines,
# then the total; exits 1 if any line would change.
set -eu
cf=${CLANG_FORMAT:-clang-format}
total=0
for f in "$@"; do
	# Lines of F that clang-format would remove or rewrite.
	n=$("$cf" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
	if [ "$n" -gt 0 ]; then
		printf '%6d %s\n' "$n" "$f"
		total=$((total + n))
	fi
done
printf '%6d lines would change (make format applies them)\n' "$total"
[ "$total" -eq 0 ]

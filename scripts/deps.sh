#!/bin/sh
# deps.sh: installs the Debian packages hookcast needs, if any are missing.
# Usage: deps.sh [build|check|bench|callgrind|lint]   (default: check)
# As root it runs apt-get; otherwise sudo if that works without a password;
# otherwise it prints the exact command to run and fails.
set -eu

build="gcc make pkg-config libc6-dev libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libsqlite3-dev libssl-dev libsystemd-dev"
case "${1:-check}" in
build) want="$build" ;;
# promtool (prometheus) checks /metrics; chromium runs the dashboard test;
# nginx (TLS and HTTP/2) is test_http2.py's subscriber;
# systemd-analyze (systemd) checks the unit; man (man-db) renders hookcast.8;
# clang with its compiler-rt (libFuzzer, the sanitizers) builds tests/fuzz.
check) want="$build check python3 openssl nginx-light prometheus chromium systemd man-db clang libclang-rt-14-dev" ;;
bench) want="$build python3 curl openssl nginx-light wrk" ;;
callgrind) want="$build python3 nginx-light valgrind" ;;
# make lint and make format: the analysers, the formatter, and check's
# header for the unit tests they read.
lint) want="$build check python3 cppcheck clang-tidy clang-format" ;;
*) echo "usage: $0 [build|check|bench|callgrind|lint]" >&2; exit 2 ;;
esac

missing=""
# The tests verify signatures with Node's standardwebhooks: any Node will do.
if [ "${1:-check}" = check ]; then
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
echo "hookcast: missing packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo"
else
	echo "hookcast: run as root:  apt-get update && $line" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086  # $line is a word list on purpose
$sudo $line

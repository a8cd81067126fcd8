#!/bin/sh
# Install the Debian packages listed in scripts/debian-packages that are
# missing.  A no-op (one dpkg-query) when everything is present.
#   scripts/deps.sh          install what is missing
#   scripts/deps.sh --check  only say what is missing; exit 1 if anything is
set -eu
here=$(dirname "$0")
list=$(grep -v '^#' "$here/debian-packages" | grep -v '^$')
missing=""
for p in $list; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "missing Debian packages:$missing"
	exit 1
fi
echo "deps: installing$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install:$missing" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists of a fresh machine are empty or old: refresh them first.
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends $missing

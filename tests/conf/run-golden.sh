#!/bin/sh
# Golden tests of `egressd -n`.
#   NAME.conf          input (run from this directory, so errors name the file as NAME.conf)
#   NAME.args          optional extra command-line arguments, one line; a first word
#                      that is not an option is the command (route, dispatch)
#   NAME.out           expected stdout for good inputs, expected stderr for bad-*.conf
# Good inputs must exit 0, and their output must parse again to itself (a masked secret,
# "********", which egressd refuses where it has no running value, parses again as a
# stand-in secret);
# bad-*.conf must exit 1 (errors in the configuration) or 2 (in the command line)
# and print exactly the expected errors.
# Usage: run-golden.sh EGRESSD DIR [--update]
set -u
egressd=$1
dir=$2
update=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
cd "$dir" || exit 1
for conf in *.conf; do
	name=${conf%.conf}
	args=""
	command=""
	[ -f "$name.args" ] && args=$(cat "$name.args")
	case $args in
	-* | "") ;;
	*) command=${args%% *}; args=${args#"$command"} ;;
	esac
	case $name in
	bad-*)
		# shellcheck disable=SC2086
		"$egressd" $command -n -c "$conf" $args >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ "$update" = "--update" ]; then cp "$tmp/err" "$name.out"; fi
		if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then
			echo "FAIL $name: exit $rc, expected 1 or 2"; fail=$((fail + 1)); continue
		fi
		if [ -s "$tmp/out" ]; then
			echo "FAIL $name: printed a configuration for a bad input"; fail=$((fail + 1)); continue
		fi
		if ! diff -u "$name.out" "$tmp/err"; then
			echo "FAIL $name: errors differ"; fail=$((fail + 1)); continue
		fi
		;;
	*)
		# shellcheck disable=SC2086
		"$egressd" $command -n -c "$conf" $args >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ "$update" = "--update" ]; then cp "$tmp/out" "$name.out"; fi
		if [ $rc -ne 0 ]; then
			echo "FAIL $name: exit $rc"; cat "$tmp/err"; fail=$((fail + 1)); continue
		fi
		if ! diff -u "$name.out" "$tmp/out"; then
			echo "FAIL $name: output differs"; fail=$((fail + 1)); continue
		fi
		sed -e 's/^password_hash = \*\*\*\*\*\*\*\*$/password_hash = $scrypt$ln=15,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$mp90zEQd5XGhjEv4WArVH4Z0XRSzkGWtJK2S\/AXJlRU/' \
			-e 's/ = \*\*\*\*\*\*\*\*$/ = c2VjcmV0/' "$tmp/out" >"$tmp/again.conf"
		if ! "$egressd" -n -c "$tmp/again.conf" >"$tmp/again" 2>"$tmp/err"; then
			echo "FAIL $name: the normalised output does not parse again:"; cat "$tmp/err"
			fail=$((fail + 1)); continue
		fi
		if ! diff -u "$tmp/out" "$tmp/again"; then
			echo "FAIL $name: the normalised output parses to something else"
			fail=$((fail + 1)); continue
		fi
		;;
	esac
	echo "ok   $name"
	pass=$((pass + 1))
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]

#!/usr/bin/env bash
# Smoke-test the frozen app (not part of the default test run: minutes, ~1 GB of disk).
#   packaging/smoke.sh              build with packaging/build.sh, then test dist/Svetlana
#   packaging/smoke.sh --no-build   test the existing dist/Svetlana
# Checks, offscreen and (where `unshare` allows) with no network: --version, `demo --headless`,
# and opening the demo project in the window via a double-click style single argument; reports
# start-up times. Exit status 0 when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ "${1:-}" != "--no-build" ]; then
  packaging/build.sh
fi
exe=$root/dist/Svetlana/Svetlana
[ -x "$exe" ] || exe=$root/dist/Svetlana/Svetlana.exe
[ -x "$exe" ] || { echo "smoke: no dist/Svetlana/Svetlana; run packaging/build.sh" >&2; exit 1; }
version=$(grep -o '__version__ = "[^"]*"' app/svetlana/__init__.py | cut -d'"' -f2)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" # nothing from the source tree or a virtual environment may leak in
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export QT_QPA_PLATFORM=offscreen XDG_DATA_HOME=$tmp/data XDG_CONFIG_HOME=$tmp/config
export XDG_CACHE_HOME=$tmp/cache HOME=$tmp/home
mkdir -p "$HOME"
offline=()
if unshare -rn true 2>/dev/null; then offline=(unshare -rn); fi
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

t=$(now)
out=$("$exe" --version)
[ "$out" = "svetlana $version" ] || fail "--version printed '$out'"
echo "smoke: --version ok in $(since "$t") s ($out)"

t=$(now)
"${offline[@]}" "$exe" demo --headless "$tmp/demo.svetlana" >demo.log 2>&1 || { cat demo.log; fail "demo --headless"; }
grep -q "correctly classified" demo.log || { cat demo.log; fail "demo --headless printed no accuracy"; }
echo "smoke: demo --headless ok in $(since "$t") s${offline:+ (no network)}: $(grep '^demo:' demo.log)"

# A double-clicked project arrives as its one argument (project.json, or the folder on macOS).
t=$(now)
SVETLANA_SMOKE_T0=$t SVETLANA_SMOKE_EXIT_MS=${SVETLANA_SMOKE_EXIT_MS:-3000} \
  "${offline[@]}" "$exe" "$tmp/demo.svetlana/project.json" >gui.log 2>&1 || { cat gui.log; fail "opening the project"; }
grep -q "smoke: window shown" gui.log || { cat gui.log; fail "no window"; }
grep -q "smoke: title .*demo" gui.log || { cat gui.log; fail "the window did not open the project"; }
echo "smoke: project window ok: $(grep 'smoke: window shown' gui.log | cut -d' ' -f2-), $(grep 'smoke: title' gui.log | cut -d' ' -f2-), whole run $(since "$t") s"
"$exe" install-desktop >install.log 2>&1 || { cat install.log; fail "install-desktop"; }
grep -qx "Exec=$(realpath "$exe") %f" "$XDG_DATA_HOME/applications/svetlana.desktop" \
  || fail "the installed launcher does not start $exe"
"$exe" uninstall-desktop >/dev/null || fail "uninstall-desktop"
[ -z "$(find "$XDG_DATA_HOME" -type f -name 'svetlana*')" ] || fail "uninstall-desktop left files"
echo "smoke: install-desktop / uninstall-desktop ok"
echo "smoke: dist size $(du -sh "$root/dist/Svetlana" | cut -f1); archive $(ls -s --block-size=M "$root"/dist/Svetlana-"$version"-* 2>/dev/null | awk '{print $2, $1}' | head -1)"
echo "smoke: all passed"

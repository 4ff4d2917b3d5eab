#!/usr/bin/env bash
# Build the double-clickable app: dist/Svetlana/ (+ dist/Svetlana.app on macOS) and a release
# archive dist/Svetlana-<version>-<platform>-<arch>.tar.gz (.zip on Windows).
#   packaging/build.sh            needs: pip install -e ".[packaging]"  (PyInstaller 6)
# Environment: PYTHON (default: python), SVETLANA_BUILD_DIR (PyInstaller work dir, default build/),
# SVETLANA_BUILD_CLEAN=0 to reuse PyInstaller's cache from an earlier build (faster re-builds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "PyInstaller is missing: pip install -e \".[packaging]\"" >&2
  exit 2
fi
version=$("$PY" -c "import svetlana; print(svetlana.__version__)")
case "$(uname -s)" in
  Linux*) platform=linux ;;
  Darwin*) platform=macos ;;
  MINGW* | MSYS* | CYGWIN* | Windows_NT) platform=windows ;;
  *) platform=$(uname -s | tr '[:upper:]' '[:lower:]') ;;
esac
arch=$(uname -m)
name="Svetlana-$version-$platform-$arch"

start=$(date +%s)
clean=--clean
[ "${SVETLANA_BUILD_CLEAN:-1}" = 0 ] && clean=
"$PY" -m PyInstaller --noconfirm $clean --log-level WARN \
  --distpath dist --workpath "${SVETLANA_BUILD_DIR:-build}/pyinstaller" packaging/svetlana.spec
echo "built dist/Svetlana in $(($(date +%s) - start)) s"

cd dist
rm -f "$name.tar.gz" "$name.zip"
case "$platform" in
  windows) "$PY" -c "import shutil; shutil.make_archive('$name', 'zip', '.', 'Svetlana')" ;;
  macos) ditto -c -k --sequesterRsrc --keepParent Svetlana.app "$name.zip" ;;
  *) tar -czf "$name.tar.gz" Svetlana ;;
esac
echo "archive: dist/$(ls "$name".* | head -1)"
du -sh Svetlana "$name".* 2>/dev/null || true

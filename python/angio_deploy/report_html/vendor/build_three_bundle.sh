#!/usr/bin/env bash
# Rebuilds three-subset.min.js from three.js on npm (the version pinned below) with
# esbuild: the exports three_entry.js names, tree-shaken and minified into one classic
# script that sets globalThis.AngioThree. Needs node/npm; not part of a normal build (the
# output is committed). Record the new version in VENDOR.md when you change it.
set -euo pipefail
THREE_VERSION=0.187.0
ESBUILD_VERSION=0.28.2
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/three_entry.js" "$work/"
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "three@$THREE_VERSION" "esbuild@$ESBUILD_VERSION"
npx esbuild three_entry.js --bundle --minify --format=iife --target=es2020 \
    --legal-comments=none \
    --banner:js="/* three.js r$(cut -d. -f2 <<<"$THREE_VERSION") subset (threejs.org), MIT License, Copyright 2010-2025 three.js authors; see LICENSE-three.txt */" \
    --outfile="$here/three-subset.min.js"
cp node_modules/three/LICENSE "$here/LICENSE-three.txt"
if grep -q '</script' "$here/three-subset.min.js"; then
    echo "the bundle contains </script and cannot be inlined" >&2
    exit 1
fi
sha256sum "$here/three-subset.min.js"

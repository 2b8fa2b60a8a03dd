#!/usr/bin/env bash
# Builds every C channel plugin under Plugins/ into OUTDIR/<id>/ with its manifest next to it,
# which is the layout Herald's plugin discovery reads.
#
#   scripts/build-plugins.sh [OUTDIR]      # default OUTDIR: <repo>/.build/herald-plugins
#   CC=clang scripts/build-plugins.sh      # any C11 compiler; default cc
#
# A plugin folder is one with a manifest.json; all its *.c files are compiled together. Every
# plugin is attempted; the script exits non-zero naming each one that failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
outdir="${1:-$repo/.build/herald-plugins}"
cc="${CC:-cc}"
# The flags the plugin ABI documents: warning-free C11, only the entry symbol exported.
cflags=(-std=c11 -O2 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden -I "$repo/include")

mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

# Prints one manifest field; fails with the manifest's path if it is missing or not a string.
manifest_field() {
    python3 -c '
import json, sys
path, field = sys.argv[1], sys.argv[2]
try:
    value = json.load(open(path, encoding="utf-8")).get(field)
except (OSError, ValueError) as error:
    sys.exit(f"{path}: cannot read the manifest: {error}")
if not isinstance(value, str) or not value:
    sys.exit(f"{path}: field {field!r} is missing or not a string")
print(value)
' "$1" "$2"
}

built=0
failed=()
shopt -s nullglob
for dir in "$repo"/Plugins/*/; do
    dir="${dir%/}"
    manifest="$dir/manifest.json"
    [[ -f "$manifest" ]] || continue
    folder="$(basename "$dir")"
    if ! id="$(manifest_field "$manifest" id)" || ! library="$(manifest_field "$manifest" library)"; then
        echo "error: plugin '$folder': bad manifest" >&2
        failed+=("$folder")
        continue
    fi
    # The id becomes a directory name and the library a file name: keep both plain.
    if [[ ! "$id" =~ ^[a-z0-9-]+$ ]]; then
        echo "error: plugin '$folder': manifest id '$id' must be lower-case letters, digits and '-'" >&2
        failed+=("$folder")
        continue
    fi
    if [[ "$library" == */* || "$library" == .* ]]; then
        echo "error: plugin '$id': manifest library '$library' must be a plain file name" >&2
        failed+=("$id")
        continue
    fi
    sources=("$dir"/*.c)
    if ((${#sources[@]} == 0)); then
        echo "error: plugin '$id': no *.c files in $dir" >&2
        failed+=("$id")
        continue
    fi
    mkdir -p "$outdir/$id"
    if ! "$cc" "${cflags[@]}" -o "$outdir/$id/$library" "${sources[@]}"; then
        echo "error: plugin '$id' failed to compile with $cc (sources: ${sources[*]#"$repo/"})" >&2
        rm -f "$outdir/$id/$library"
        rmdir "$outdir/$id" 2>/dev/null || true
        failed+=("$id")
        continue
    fi
    cp "$manifest" "$outdir/$id/manifest.json"
    echo "built plugin $id -> $outdir/$id/$library"
    built=$((built + 1))
done

if ((${#failed[@]} > 0)); then
    echo "error: ${#failed[@]} plugin(s) failed to build: ${failed[*]}" >&2
    exit 1
fi
if ((built == 0)); then
    echo "no plugins found under $repo/Plugins (a plugin folder needs a manifest.json)" >&2
fi

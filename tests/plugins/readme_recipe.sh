#!/usr/bin/env bash
# The README's "Write your own attention" recipe must be the example plugin, line for line.
# Usage: readme_recipe.sh <nanoattn source dir>
set -euo pipefail
src=$1
block() {  # prints the fenced block that follows the line "`$1`:" in the README
  awk -v head="\`$1\`:" '$0 == head {f = 1; next} f && /^```/ {if (n++) exit; next} f && n == 1' "$src/README.md"
}
status=0
for f in CMakeLists.txt cosine.cpp; do
  if ! diff <(block "$f") "$src/plugins/examples/cosine/$f"; then
    echo "readme_recipe: README's $f differs from plugins/examples/cosine/$f (diff above)"
    status=1
  fi
done
[ $status -eq 0 ] && echo "readme_recipe: README recipe == plugins/examples/cosine"
exit $status

# Sourced by the bench scripts: write_section MARKER TEXT puts TEXT (which starts with <!-- MARKER:begin --> and ends
# with <!-- MARKER:end -->) in docs/benchmarks.md in place of that section, or at the end when the file has none.
write_section() {
  local marker=$1 text=$2 out=docs/benchmarks.md
  mkdir -p docs
  [ -f "$out" ] || printf '# Benchmarks\n\nEach section is written by the script it names; rerun the script to refresh it.\n' >"$out"
  if grep -qF "<!-- $marker:begin -->" "$out"; then
    awk -v s="$text" -v b="<!-- $marker:begin -->" -v e="<!-- $marker:end -->" \
      'BEGIN{skip=0} $0==b{print s; skip=1; next} $0==e{skip=0; next} !skip{print}' "$out" >"$out.tmp" && mv "$out.tmp" "$out"
  else
    printf '\n%s\n' "$text" >>"$out"
  fi
  echo "written to $out"
}

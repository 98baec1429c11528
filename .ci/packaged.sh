#!/usr/bin/env bash
# Packages every library crate (`cargo package`), then builds every packaged crate (its
# library, tests, benches and examples) and runs its doctests from those sources alone: the
# .crate files are unpacked outside the repository into a workspace of their own, whose crates
# find each other through [patch.crates-io], as they will on crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# --no-verify: the packaged crates are built below, from their unpacked sources as path
# dependencies. cargo's own verification takes its workspace siblings from a local registry,
# and registry crates count as immutable: it reuses their unpacked sources
# ($CARGO_HOME/registry/src/-<hash>/) and compiled artefacts from an earlier run in the same
# folder, so a second run verified against the first run's sources (seen: a renamed type "not
# found" in a sibling).
cargo package --workspace --exclude xtask --exclude omendex-python --locked --no-verify "$@"
work=$(mktemp -d "${TMPDIR:-/tmp}/omendex-packaged.XXXXXX")
trap 'rm -rf "$work"' EXIT
members=() patches=()
for crate in target/package/*.crate; do
  dir=$(basename "$crate" .crate)
  name=${dir%-*}
  tar -xzf "$crate" -C "$work"
  members+=("\"$dir\"")
  patches+=("$name = { path = \"$dir\" }")
done
{
  echo '[workspace]'
  echo 'resolver = "3"'
  echo "members = [$(IFS=,; echo "${members[*]}")]"
  echo
  echo '[patch.crates-io]'
  printf '%s\n' "${patches[@]}"
} > "$work/Cargo.toml"
# The repository's lock pins the same versions of every outside dependency.
cp Cargo.lock "$work/Cargo.lock"
echo "packaged crates: ${members[*]}"
# Doctests run (each reads only what its crate ships); the other tests are built.
(cd "$work" && CARGO_TARGET_DIR="$root/target/packaged" cargo test --workspace --all-targets --no-run)
(cd "$work" && CARGO_TARGET_DIR="$root/target/packaged" cargo test --workspace --doc)

#!/usr/bin/env python3
"""Fails when token-refresh's public API names a type, trait or re-export
from a crate that Cargo.toml's allow-list does not name.

Every foreign type in a public signature is a dependency the crate can no
longer bump without a breaking release; the allow-list is where such a
choice is made on purpose (`[package.metadata.cargo_check_external_types]
allowed_external_types`, the format cargo-check-external-types reads).

Usage (no nightly toolchain needed; RUSTC_BOOTSTRAP opens rustdoc's JSON):

    RUSTC_BOOTSTRAP=1 cargo rustdoc -p token-refresh --all-features -- -Z unstable-options --output-format json
    python3 scripts/check-external-types.py [target/doc/token_refresh.json] [Cargo.toml]

It walks every item rustdoc documents (private items are not in the JSON):
signatures, fields, variants, bounds, trait impls and re-exports, maps each
referenced path to its crate and reports the paths outside the allow-list.
Blanket and auto-trait impls are the foreign crates' own, not this API, and
the standard library (core, alloc, std) is always allowed.
"""

import fnmatch
import json
import sys
import tomllib
from collections import defaultdict

STANDARD = {"core", "alloc", "std"}


def allowed_patterns(manifest):
    with open(manifest, "rb") as f:
        data = tomllib.load(f)
    return data["package"]["metadata"]["cargo_check_external_types"]["allowed_external_types"]


def main():
    doc = sys.argv[1] if len(sys.argv) > 1 else "target/doc/token_refresh.json"
    manifest = sys.argv[2] if len(sys.argv) > 2 else "Cargo.toml"
    with open(doc) as f:
        krate = json.load(f)
    patterns = allowed_patterns(manifest)
    paths = krate["paths"]
    crates = {int(k): v["name"] for k, v in krate["external_crates"].items()}
    index = krate["index"]

    def foreign_path(item_id):
        """`crate::path` of a foreign item, or None for a local one."""
        entry = paths.get(str(item_id))
        if entry is None or entry["crate_id"] == 0:
            return None
        name = crates.get(entry["crate_id"], "?")
        return "::".join([name] + entry["path"][1:]) if entry["path"] else name

    found = defaultdict(set)  # foreign path -> local items naming it

    def walk(node, owner):
        if isinstance(node, dict):
            # A resolved path (a type or a trait), or a re-export's target.
            if "id" in node and ("path" in node or "args" in node):
                path = foreign_path(node["id"])
                if path:
                    found[path].add(owner)
            for value in node.values():
                walk(value, owner)
        elif isinstance(node, list):
            for value in node:
                walk(value, owner)

    for item in index.values():
        if item.get("crate_id") != 0:
            continue
        inner = item.get("inner", {})
        impl = inner.get("impl")
        if impl is not None and (impl.get("blanket_impl") is not None or impl.get("is_synthetic")):
            continue
        owner = item.get("name") or "impl"
        if "use" in inner:
            use = inner["use"]
            if use.get("id") is not None:
                path = foreign_path(use["id"])
                if path:
                    found[path].add(owner)
            elif use.get("source"):
                # A glob or a re-export of a whole foreign crate.
                root = use["source"].split("::")[0]
                if root in crates.values():
                    found[use["source"]].add(owner)
            continue
        walk(inner, owner)

    def crate_of(path):
        return path.split("::")[0]

    def is_allowed(path):
        return crate_of(path) in STANDARD or any(fnmatch.fnmatchcase(path, p) for p in patterns)

    exposed = sorted({crate_of(p) for p in found if crate_of(p) not in STANDARD})
    print("foreign crates in the public API: " + ", ".join(exposed))
    refused = sorted(p for p in found if not is_allowed(p))
    for path in refused:
        print(f"not allowed: {path} (in {', '.join(sorted(found[path])[:5])})", file=sys.stderr)
    unused = [p for p in patterns if not any(fnmatch.fnmatchcase(f, p) for f in found)]
    for pattern in unused:
        print(f"allowed but not exposed (remove it): {pattern}", file=sys.stderr)
    if refused or unused:
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fails when any package in the dependency tree (dev and build dependencies
included) is not under a permissive licence (MIT, Apache-2.0, BSD-style and
their kin). Reads `cargo metadata`; needs nothing installed."""

import json
import re
import subprocess
import sys

PERMISSIVE = {
    "MIT", "MIT-0", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "0BSD", "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016",
    "CC0-1.0", "BSL-1.0", "Unlicense", "CDLA-Permissive-2.0", "PostgreSQL",
}


def tokens(expression):
    expression = expression.replace("/", " OR ")
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+(?: WITH [A-Za-z0-9.+-]+)?", expression)


def allowed(expression):
    """Evaluates an SPDX expression: true when some choice of OR branches
    leaves only permissive licences."""
    items = tokens(expression)
    position = 0

    def parse_or():
        nonlocal position
        value = parse_and()
        while position < len(items) and items[position] == "OR":
            position += 1
            value = parse_and() or value
        return value

    def parse_and():
        nonlocal position
        value = parse_atom()
        while position < len(items) and items[position] == "AND":
            position += 1
            value = parse_atom() and value
        return value

    def parse_atom():
        nonlocal position
        item = items[position]
        position += 1
        if item == "(":
            value = parse_or()
            position += 1
            return value
        return item in PERMISSIVE

    result = parse_or()
    return result and position == len(items)


def main():
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True, capture_output=True, text=True).stdout)
    refused = []
    for package in metadata["packages"]:
        licence = package.get("license")
        if not licence or not allowed(licence):
            refused.append(f"{package['name']} {package['version']}: {licence or 'no licence field'}")
    if refused:
        print("packages with a licence outside the permissive allow-list:")
        print("\n".join(sorted(refused)))
        sys.exit(1)
    print(f"licences: all {len(metadata['packages'])} packages are permissively licensed")


if __name__ == "__main__":
    main()

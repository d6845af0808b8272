#!/usr/bin/env python3
"""Counts domain labels in every file of a directory with Python's json module
(through recon_reference.count_file, the same code the reference engine uses),
for the differential test of the Rust scanner.

    count_domains.py DIR  ->  one JSON object {file name: result}, where result
    is {"counts": {label: n}, "items": n, "non_objects": n, "no_valid_domain": n}
    or {"error": "not_utf8" | "malformed" | "not_array" | "unreadable"}.
    count_domains.py --labels  ->  the 18 labels the reference uses.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recon_reference import LABELS, count_file  # noqa: E402


def main(argv):
    if argv[1:] == ["--labels"]:
        json.dump(LABELS, sys.stdout)
        return 0
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    d = argv[1]
    out = {}
    for name in sorted(os.listdir(d)):
        res, err = count_file(os.path.join(d, name))
        out[name] = res if err is None else {"error": err}
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Reference implementation of RECON's domain assignment, for row-by-row
differential tests of the Rust engine.

Written from ../shared/reference/recon-integration.md ("the spec"); the spec's
lines are quoted next to the code that implements them. Concept files are
parsed with Python's own `json` module, as RECON does, with the spec's
"do better" rule: a file RECON would crash on (not UTF-8, RecursionError, an
over-long integer) is skipped and counted, never fatal.

    recon_reference.py --db X --concepts DIR [--source stream.echo6.co] backfill [--limit N]
    recon_reference.py --db X --concepts DIR tiebreaker [--threshold 500] [--skip Transcript ...]

Both write recon_domain, recon_domain_status and recon_domain_assigned_at,
and print a JSON summary {"counts": {status: n}, "rows": {hash: [status, domain]}}.
Add --dry-run to print without writing.
"""

import argparse
import json
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone

# "The 18 domains (the taxonomy)": exact strings.
LABELS = [
    "Agriculture & Livestock", "Civil Organization", "Communications",
    "Food Systems", "Foundational Skills", "Logistics", "Medical",
    "Navigation", "Operations", "Power Systems", "Preservation & Storage",
    "Security", "Shelter & Construction", "Technology", "Tools & Equipment",
    "Vehicles", "Water Systems", "Wilderness Skills",
]
VALID = set(LABELS)

# "RECON's assigner joins whatever the column holds onto the concepts dir, so
# a row holding another well-formed hash (a 64-hex sha256 from an older
# import, say) has its dir read. Match that for every hash that is one safe
# path component - ASCII letters and digits only, 1 to 128 of them (case
# kept: the file system is case-sensitive) - and refuse anything else
# (separators, dots, NUL, whitespace, empty) as a bad hash that never becomes
# a path." (recon-integration.md; the companion's recon::hash)
HASH_RE = re.compile(r"[0-9A-Za-z]{1,128}\Z")


# ---------------------------------------------------------------- files

def count_file(path):
    """One window file -> (result, error).

    result = {"counts": {label: n}, "items": n, "non_objects": n,
              "no_valid_domain": n} or None; error is None or one of
    "unreadable", "not_utf8", "malformed", "not_array".
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        # "RECON's Python crashes on ... a window file that is not valid UTF-8
        # ... Do better: skip such a file as unreadable, count it, go on."
        # (UnicodeDecodeError is a ValueError: test it first.)
        return None, "not_utf8"
    except (json.JSONDecodeError, ValueError, RecursionError):
        # "skip files that fail to ... parse"
        return None, "malformed"
    except OSError:
        # "skip files that fail to read"
        return None, "unreadable"
    if not isinstance(data, list):
        # "or are not arrays"
        return None, "not_array"
    counts = {}
    non_objects = no_valid = 0
    for item in data:
        if not isinstance(item, dict):
            # "and items that are not objects"
            non_objects += 1
            continue
        # "Count each concept whose `domain` is a valid label (a string), or
        # each valid label inside a list."
        dom = item.get("domain")
        found = 0
        if isinstance(dom, str):
            if dom in VALID:
                counts[dom] = counts.get(dom, 0) + 1
                found += 1
        elif isinstance(dom, list):
            for d in dom:
                if isinstance(d, str) and d in VALID:
                    counts[d] = counts.get(d, 0) + 1
                    found += 1
        if not found:
            no_valid += 1
    return {"counts": counts, "items": len(data), "non_objects": non_objects,
            "no_valid_domain": no_valid}, None


def window_names(d):
    # "read every file in the document's concept dir whose name starts with
    # `window_` and ends with `.json`"
    return sorted(n for n in os.listdir(d)
                  if n.startswith("window_") and n.endswith(".json"))


def count_doc(concepts, h):
    """A document's label counts -> (dir_found, {label: n})."""
    if not isinstance(h, str) or not HASH_RE.match(h):
        return False, {}
    d = os.path.join(concepts, h)
    if not os.path.isdir(d):
        return False, {}
    total = {}
    try:
        names = window_names(d)
    except OSError:
        names = []
    for n in names:
        res, _err = count_file(os.path.join(d, n))
        if res:
            for k, v in res["counts"].items():
                total[k] = total.get(k, 0) + v
    return True, total


def top_domains(counts):
    """The domains sharing the highest (non-zero) count."""
    best = max(counts.values(), default=0)
    if best == 0:
        return []
    return sorted(k for k, v in counts.items() if v == best)


# ---------------------------------------------------------------- db

def migrate(conn):
    # "The feature's migration adds four nullable TEXT columns to `documents`
    # ... and the index idx_documents_recon_domain_status" — RECON applies it at
    # start-up; idempotent.
    cols = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
    for c in ("recon_domain", "recon_domain_status", "recon_domain_assigned_at",
              "peertube_category_pushed_at"):
        if c not in cols:
            conn.execute(f"ALTER TABLE documents ADD COLUMN {c} TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_documents_recon_domain_status "
                 "ON documents(recon_domain_status)")
    conn.commit()


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def has_columns(conn):
    cols = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
    return {"recon_domain", "recon_domain_status"} <= cols


def backfill(conn, concepts, source, limit):
    # "Backfill selects documents with documents.status = 'complete',
    # recon_domain IS NULL, and a catalogue row with the PeerTube source,
    # oldest discovered_at first; --limit caps how many."
    # (documents.discovered_at; equal timestamps fall back to rowid, i.e.
    # insertion order — the spec does not say; keep the Rust side the same.)
    # A dry run on an unmigrated db treats the missing columns as empty.
    unset = "d.recon_domain IS NULL" if has_columns(conn) else "1"
    sql = ("SELECT d.hash FROM documents d WHERE d.status = 'complete' "
           f"AND {unset} "
           "AND EXISTS (SELECT 1 FROM catalogue c WHERE c.hash = d.hash AND c.source = ?) "
           "ORDER BY d.discovered_at ASC, d.rowid ASC")
    args = [source]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    out = {}
    for (h,) in conn.execute(sql, args).fetchall():
        found, counts = count_doc(concepts, h)
        tied = top_domains(counts)
        # "No dir, or zero counts -> needs_reprocess (domain NULL). One highest
        # count -> assigned with that domain. Two or more share the highest
        # count -> tied_pass_1 (domain NULL)."
        if not found or not tied:
            out[h] = ("needs_reprocess", None)
        elif len(tied) == 1:
            out[h] = ("assigned", tied[0])
        else:
            out[h] = ("tied_pass_1", None)
    return out


def tiebreaker(conn, concepts, source, threshold, skip, limit):
    # "the tiebreaker takes every tied_pass_1 row whatever its source"
    if not has_columns(conn):
        return {}
    sql = ("SELECT d.hash, (SELECT c.category FROM catalogue c WHERE c.hash = d.hash) "
           "FROM documents d WHERE d.recon_domain_status = 'tied_pass_1' "
           "ORDER BY d.discovered_at ASC, d.rowid ASC")
    args = []
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = conn.execute(sql, args).fetchall()
    cache = {}

    def doc_counts(h, fresh=False):
        if fresh or h not in cache:
            cache[h] = count_doc(concepts, h)[1]
        return cache[h]

    def channel_counts(channel, h, fresh):
        # "sum the valid-domain counts of every *other* document in the same
        # channel (catalogue rows with the same category and the PeerTube
        # source, whatever their documents status)"; "channel matching is
        # exact string equality (a NULL channel matches nothing)"
        total = {}
        if channel is None:
            return total
        for (m,) in conn.execute("SELECT hash FROM catalogue WHERE category = ? AND source = ?",
                                 (channel, source)):
            if m == h:
                continue
            for k, v in doc_counts(m, fresh).items():
                total[k] = total.get(k, 0) + v
        return total

    def is_mega(channel):
        # "a channel with more than 500 catalogue rows with the PeerTube
        # source, whatever their status (strictly more: 500 is not mega) ...
        # RECON later also kept an explicit skip list containing "Transcript";
        # support both"
        if channel is None:
            return False
        if channel in skip:
            return True
        (n,) = conn.execute("SELECT COUNT(*) FROM catalogue WHERE category = ? AND source = ?",
                            (channel, source)).fetchone()
        return n > threshold

    out = {}
    for h, channel in rows:
        decision = None
        for fresh in (False, True):
            # "recompute its tied domains. None left -> needs_reprocess;
            # exactly one -> assigned."
            tied = top_domains(doc_counts(h, fresh))
            if not tied:
                decision = ("needs_reprocess", None)
                break
            if len(tied) == 1:
                decision = ("assigned", tied[0])
                break
            # "If the channel is a mega-channel -> tied_manual with the
            # alphabetically first tied domain."
            if is_mega(channel):
                decision = ("tied_manual", tied[0])
                break
            # "pick, among the tied domains only, the one with the highest
            # channel count; a unique best -> tied_pass_2."
            ch = channel_counts(channel, h, fresh)
            best = max(ch.get(d, 0) for d in tied)
            winners = [d for d in tied if ch.get(d, 0) == best]
            if len(winners) == 1:
                decision = ("tied_pass_2", winners[0])
                break
            # "Otherwise count once more (concept files may have changed
            # mid-run) and try again; still tied -> tied_manual with the
            # alphabetically first tied domain." — "the alphabetically first
            # of *all* the document's tied domains, not of those still tied at
            # channel level" (tied is sorted).
            decision = ("tied_manual", tied[0])
        out[h] = decision
    return out


def write(conn, decisions):
    ts = now()
    with conn:  # one transaction
        for h, (status, domain) in decisions.items():
            conn.execute("UPDATE documents SET recon_domain = ?, recon_domain_status = ?, "
                         "recon_domain_assigned_at = ? WHERE hash = ?", (domain, status, ts, h))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--concepts", required=True)
    p.add_argument("--source", default="stream.echo6.co")
    p.add_argument("--dry-run", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backfill")
    b.add_argument("--limit", type=int)
    t = sub.add_parser("tiebreaker")
    t.add_argument("--threshold", type=int, default=500)
    t.add_argument("--skip", nargs="*", default=["Transcript"])
    t.add_argument("--limit", type=int)
    a = p.parse_args(argv)

    conn = sqlite3.connect(a.db, timeout=30)
    conn.execute("PRAGMA busy_timeout=5000")
    if not a.dry_run:
        migrate(conn)
    if a.cmd == "backfill":
        decisions = backfill(conn, a.concepts, a.source, a.limit)
    else:
        decisions = tiebreaker(conn, a.concepts, a.source, a.threshold, set(a.skip), a.limit)
    if not a.dry_run:
        write(conn, decisions)
    counts = {}
    for status, _ in decisions.values():
        counts[status] = counts.get(status, 0) + 1
    json.dump({"counts": counts, "rows": {h: list(v) for h, v in decisions.items()}},
              sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

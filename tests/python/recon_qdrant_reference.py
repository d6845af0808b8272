#!/usr/bin/env python3
"""Reference implementation of RECON's Qdrant-era domain assignment (RECON
3b37d96 + 299be21), for row-by-row differential tests of the Rust engine.

Written from ../shared/reference/qdrant-integration.md; its lines are quoted
next to the code. It talks to Qdrant's REST API with the standard library
only, the way RECON's Python does it: ONE scroll per document in pass 1, one
`match.any` scroll per tied video for its channel.

    recon_qdrant_reference.py --db X --url http://127.0.0.1:6333 [--collection C] backfill [--limit N]
    recon_qdrant_reference.py --db X --url ... tiebreaker [--skip Transcript ...] [--limit N]

Prints {"counts": {status: n}, "rows": {hash: [status, domain]}, "requests": n}
and writes the rows unless --dry-run.

Its selection, tie and write-back code repeats recon_reference.py's on
purpose: each reference stands alone next to the spec it quotes, so a change
to one spec's reading cannot leak into the other's.
"""

import argparse
import json
import sqlite3
import sys
import urllib.request

from recon_reference import LABELS, VALID, has_columns, migrate, now, top_domains  # noqa: F401

REQUESTS = [0]


class QdrantError(Exception):
    pass


def post(url, collection, path, body, api_key=None):
    REQUESTS[0] += 1
    req = urllib.request.Request(f"{url}/collections/{collection}/points/{path}",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if api_key:
        req.add_header("api-key", api_key)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)["result"]
    except Exception as e:  # RECON: any failed request is caught per document
        raise QdrantError(str(e))


def count_domain(dom, counts):
    # "count `domain` when it is a valid label string, or each valid label
    # string inside a list (exact strings, as with the files)"
    if isinstance(dom, str):
        if dom in VALID:
            counts[dom] = counts.get(dom, 0) + 1
    elif isinstance(dom, list):
        for d in dom:
            if isinstance(d, str) and d in VALID:
                counts[d] = counts.get(d, 0) + 1


def scroll_counts(q, match):
    """Counts over every point matching `match` on doc_hash, all pages."""
    counts = {}
    offset = None
    while True:
        res = post(q.url, q.collection, "scroll", {
            "filter": {"must": [{"key": "doc_hash", "match": match}]},
            "limit": 1000, "offset": offset,
            "with_payload": ["doc_hash", "domain"], "with_vector": False,
        }, q.api_key)
        for p in res["points"]:
            count_domain((p.get("payload") or {}).get("domain"), counts)
        offset = res.get("next_page_offset")
        if offset is None:
            return counts


def doc_counts(q, h):
    # "A document's counts: every point whose doc_hash equals the document's hash"
    return scroll_counts(q, {"value": h})


def backfill(conn, q, source, limit):
    # "The backfill selects recon_domain IS NULL OR recon_domain_status =
    # 'needs_reprocess' (complete, PeerTube source, oldest first)."
    unset = ("(d.recon_domain IS NULL OR d.recon_domain_status = 'needs_reprocess')"
             if has_columns(conn) else "1")
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
        try:
            counts = doc_counts(q, h)
        except QdrantError:
            # "a failed Qdrant request → needs_reprocess (transient)"
            out[h] = ("needs_reprocess", None)
            continue
        tied = top_domains(counts)
        # "zero counted points → no_concepts; otherwise assigned / tied_pass_1"
        if not tied:
            out[h] = ("no_concepts", None)
        elif len(tied) == 1:
            out[h] = ("assigned", tied[0])
        else:
            out[h] = ("tied_pass_1", None)
    return out


def tiebreaker(conn, q, source, skip, limit):
    if not has_columns(conn):
        return {}
    sql = ("SELECT d.hash, (SELECT c.category FROM catalogue c WHERE c.hash = d.hash) "
           "FROM documents d WHERE d.recon_domain_status = 'tied_pass_1' "
           "ORDER BY d.discovered_at ASC, d.rowid ASC")
    args = []
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    out = {}
    for h, channel in conn.execute(sql, args).fetchall():
        try:
            # "tied domains from Qdrant (none left → no_concepts, one → assigned)"
            tied = top_domains(doc_counts(q, h))
            if not tied:
                out[h] = ("no_concepts", None)
                continue
            if len(tied) == 1:
                out[h] = ("assigned", tied[0])
                continue
            # "a channel on the skip list → tied_manual with the alphabetically
            # first tied domain" (299be21: the skip list alone, no threshold)
            if channel is not None and channel in skip:
                out[h] = ("tied_manual", tied[0])
                continue
            others = []
            if channel is not None:
                others = [m for (m,) in conn.execute(
                    "SELECT hash FROM catalogue WHERE category = ? AND source = ?", (channel, source)) if m != h]
            # "the channel sum is the counts of every other video of the
            # channel (one scroll with match: {any: [...hashes]})"
            ch = scroll_counts(q, {"any": others}) if others else {}
            best = max(ch.get(d, 0) for d in tied)
            winners = [d for d in tied if ch.get(d, 0) == best]
            # "a unique best among the tied domains → tied_pass_2, else
            # tied_manual with the fallback. There is no pass 3 re-count."
            out[h] = ("tied_pass_2", winners[0]) if len(winners) == 1 else ("tied_manual", tied[0])
        except QdrantError:
            out[h] = ("needs_reprocess", None)
    return out


def write(conn, decisions):
    ts = now()
    with conn:
        for h, (status, domain) in decisions.items():
            conn.execute("UPDATE documents SET recon_domain = ?, recon_domain_status = ?, "
                         "recon_domain_assigned_at = ? WHERE hash = ?", (domain, status, ts, h))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--collection", default="recon_knowledge_hybrid")
    p.add_argument("--api-key")
    p.add_argument("--source", default="stream.echo6.co")
    p.add_argument("--dry-run", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backfill")
    b.add_argument("--limit", type=int)
    t = sub.add_parser("tiebreaker")
    t.add_argument("--skip", nargs="*", default=["Transcript"])
    t.add_argument("--limit", type=int)
    a = p.parse_args(argv)
    a.url = a.url.rstrip("/")

    conn = sqlite3.connect(a.db, timeout=30)
    conn.execute("PRAGMA busy_timeout=5000")
    if not a.dry_run:
        migrate(conn)
    if a.cmd == "backfill":
        decisions = backfill(conn, a, a.source, a.limit)
    else:
        decisions = tiebreaker(conn, a, a.source, set(a.skip), a.limit)
    if not a.dry_run:
        write(conn, decisions)
    counts = {}
    for status, _ in decisions.values():
        counts[status] = counts.get(status, 0) + 1
    json.dump({"counts": counts, "rows": {h: list(v) for h, v in decisions.items()}, "requests": REQUESTS[0]},
              sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Self-test of recon_reference.py on hand-built RECON data: each case is one
sentence of the spec. Run: python3 -m unittest tests/python/test_recon_reference.py
"""
import io
import json
import os
import sqlite3
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recon_reference as rr  # noqa: E402

SRC = "stream.echo6.co"
SCHEMA = """
CREATE TABLE catalogue(hash TEXT PRIMARY KEY, filename TEXT NOT NULL, path TEXT NOT NULL,
    size_bytes INTEGER, source TEXT, category TEXT, status TEXT DEFAULT 'catalogued',
    discovered_at TEXT DEFAULT CURRENT_TIMESTAMP, path_updated_at TEXT);
CREATE TABLE documents(hash TEXT PRIMARY KEY, filename TEXT NOT NULL, path TEXT,
    size_bytes INTEGER, page_count INTEGER, book_title TEXT, book_author TEXT,
    collection TEXT DEFAULT 'survival', status TEXT DEFAULT 'pending',
    pages_extracted INTEGER DEFAULT 0, concepts_extracted INTEGER DEFAULT 0,
    vectors_inserted INTEGER DEFAULT 0, discovered_at TEXT DEFAULT CURRENT_TIMESTAMP,
    extracted_at TEXT, enriched_at TEXT, embedded_at TEXT, error_message TEXT,
    retry_count INTEGER DEFAULT 0, organized_at TEXT);
CREATE INDEX idx_documents_status ON documents(status);
"""


def h(n):
    return f"{n:032x}"


class Fixture:
    def __init__(self, tmp):
        self.db = os.path.join(tmp, "recon.db")
        self.concepts = os.path.join(tmp, "concepts")
        os.mkdir(self.concepts)
        self.conn = sqlite3.connect(self.db)
        self.conn.executescript(SCHEMA)
        self.t = 0

    def doc(self, n, channel, windows=None, source=SRC, status="complete", documents_row=True):
        """windows: list of lists of domains (one list per window file), or raw bytes."""
        self.t += 1
        ts = f"2024-01-01 00:{self.t // 60:02d}:{self.t % 60:02d}"
        self.conn.execute("INSERT INTO catalogue(hash, filename, path, source, category, discovered_at) "
                          "VALUES (?,?,?,?,?,?)", (h(n), "f", f"https://{SRC}/w/x{n}", source, channel, ts))
        if documents_row:
            self.conn.execute("INSERT INTO documents(hash, filename, status, discovered_at) VALUES (?,?,?,?)",
                              (h(n), "f", status, ts))
        self.conn.commit()
        if windows is not None:
            d = os.path.join(self.concepts, h(n))
            os.mkdir(d)
            for i, w in enumerate(windows):
                data = w if isinstance(w, bytes) else json.dumps([{"title": "t", "domain": x} for x in w]).encode()
                with open(os.path.join(d, f"window_{i + 1:04d}.json"), "wb") as f:
                    f.write(data)

    def run(self, *args):
        buf = io.StringIO()
        with redirect_stdout(buf):
            rc = rr.main(["--db", self.db, "--concepts", self.concepts, *args])
        assert rc == 0
        return json.loads(buf.getvalue())

    def row(self, n):
        return tuple(self.conn.execute("SELECT recon_domain_status, recon_domain FROM documents WHERE hash = ?",
                                       (h(n),)).fetchone())


class ReferenceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.f = Fixture(self.tmp.name)

    def tearDown(self):
        self.f.conn.close()
        self.tmp.cleanup()

    def test_count_file_python_semantics(self):
        p = os.path.join(self.tmp.name, "w.json")
        cases = [
            (b'[{"domain": "Medical", "x": NaN}, {"domain": ["Medical", 1, "Security", "old"]}, 3, {}]',
             ({"counts": {"Medical": 2, "Security": 1}, "items": 4, "non_objects": 1, "no_valid_domain": 1}, None)),
            (b'[{"domain": "Medical", "domain": "Logistics"}]',
             ({"counts": {"Logistics": 1}, "items": 1, "non_objects": 0, "no_valid_domain": 0}, None)),
            (b'[{"dom\\u0061in": "Tools \\u0026 Equipment"}]',
             ({"counts": {"Tools & Equipment": 1}, "items": 1, "non_objects": 0, "no_valid_domain": 0}, None)),
            (b'\xef\xbb\xbf[]', (None, "malformed")),
            (b'["\xff"]', (None, "not_utf8")),
            (b'{"domain": "Medical"}', (None, "not_array")),
            (b'[' + b'1' * 4301 + b']', (None, "malformed")),
            (b'[' * 5000 + b']' * 5000, (None, "malformed")),  # RecursionError, skipped not fatal
        ]
        for data, want in cases:
            with open(p, "wb") as fh:
                fh.write(data)
            self.assertEqual(rr.count_file(p), want, data[:40])
        self.assertEqual(rr.count_file(self.tmp.name), (None, "unreadable"))

    def test_backfill_pass_1(self):
        f = self.f
        f.doc(1, "A", [["Medical", "Medical"], ["Security"]])         # clear winner
        f.doc(2, "A", [["Medical"], ["Security"]])                     # tie
        f.doc(3, "A", None)                                            # no dir
        f.doc(4, "A", [["medical", "Survival"], []])                   # zero counts
        f.doc(5, "A", [b'["\xff"]', ["Logistics"]])                    # non-UTF-8 file skipped
        f.doc(6, "A", [["Medical"]], status="enriched")                # not complete
        f.doc(7, "A", [["Medical"]], source="other")                   # not PeerTube
        f.doc(8, "A", [b"[", b"{}", ["Water Systems"]])                # malformed / not array skipped
        f.doc(9, "A", [["Medical"]], documents_row=False)              # catalogue only
        out = f.run("backfill")
        self.assertEqual(f.row(1), ("assigned", "Medical"))
        self.assertEqual(f.row(2), ("tied_pass_1", None))
        self.assertEqual(f.row(3), ("needs_reprocess", None))
        self.assertEqual(f.row(4), ("needs_reprocess", None))
        self.assertEqual(f.row(5), ("assigned", "Logistics"))
        self.assertEqual(f.row(6), (None, None))
        self.assertEqual(f.row(7), (None, None))
        self.assertEqual(f.row(8), ("assigned", "Water Systems"))
        self.assertEqual(out["counts"], {"assigned": 3, "tied_pass_1": 1, "needs_reprocess": 2})
        # "backfill takes every row whose domain is NULL (tied_pass_1 and
        # needs_reprocess rows included)"; assigned rows are not taken again.
        out = f.run("backfill")
        self.assertEqual(sorted(out["rows"]), [h(2), h(3), h(4)])

    def test_backfill_limit_oldest_first(self):
        f = self.f
        for n in range(1, 6):
            f.doc(n, "A", [["Medical"]])
        f.conn.execute("UPDATE documents SET discovered_at = '2000-01-01' WHERE hash = ?", (h(5),))
        f.conn.commit()
        out = f.run("backfill", "--limit", "2")
        self.assertEqual(sorted(out["rows"]), [h(1), h(5)])

    def test_dry_run_writes_nothing_on_unmigrated_db(self):
        f = self.f
        f.doc(1, "A", [["Medical"]])
        out = f.run("--dry-run", "backfill")
        self.assertEqual(out["rows"], {h(1): ["assigned", "Medical"]})
        cols = {r[1] for r in f.conn.execute("PRAGMA table_info(documents)")}
        self.assertNotIn("recon_domain", cols)

    def test_tiebreaker(self):
        f = self.f
        f.doc(1, "Chan", [["Medical", "Security"]])                   # channel prefers Security
        f.doc(2, "Chan", [["Security", "Security", "Logistics"]])
        f.doc(3, "Chan", [["Security"]], status="enriched")           # counts whatever its status
        f.doc(4, "Chan", [["Medical"]], source="other")               # other source: not a channel-mate
        f.doc(5, "Even", [["Water Systems", "Medical"]])              # channel tied -> tied_manual
        f.doc(6, "Even", [["Water Systems", "Medical", "Logistics"]])
        f.doc(7, "Zero", [["Vehicles", "Navigation"]])                # channel has nothing -> tied_manual
        f.doc(8, None, [["Vehicles", "Navigation"]])                  # NULL channel matches nothing
        f.doc(9, "Chan", [["Medical", "Security"]], source="other")   # tied row of another source is taken
        # Fallback is the first of ALL tied domains: channel ties Security/Technology, doc ties 3.
        f.doc(10, "Fb", [["Technology", "Security", "Communications"]])
        f.doc(11, "Fb", [["Technology", "Security"]])
        f.run("backfill")
        f.conn.execute("UPDATE documents SET recon_domain_status = 'tied_pass_1' WHERE hash = ?", (h(9),))
        f.conn.commit()
        f.run("tiebreaker")
        self.assertEqual(f.row(1), ("tied_pass_2", "Security"))
        self.assertEqual(f.row(5), ("tied_manual", "Medical"))
        self.assertEqual(f.row(6), ("tied_manual", "Logistics"))
        self.assertEqual(f.row(7), ("tied_manual", "Navigation"))
        self.assertEqual(f.row(8), ("tied_manual", "Navigation"))
        self.assertEqual(f.row(9), ("tied_pass_2", "Security"))
        self.assertEqual(f.row(10), ("tied_manual", "Communications"))
        self.assertEqual(f.row(11), ("tied_manual", "Security"))

    def test_tiebreaker_rechecks_own_counts(self):
        f = self.f
        f.doc(1, "A", [["Medical", "Security"]])
        f.doc(2, "A", [["Medical", "Security"]])
        f.doc(3, "A", None)
        f.run("backfill")
        # Files changed since pass 1: one now has a winner, one lost everything.
        with open(os.path.join(f.concepts, h(1), "window_0002.json"), "w") as fh:
            json.dump([{"domain": "Medical"}], fh)
        for name in os.listdir(os.path.join(f.concepts, h(2))):
            os.remove(os.path.join(f.concepts, h(2), name))
        f.run("tiebreaker")
        self.assertEqual(f.row(1), ("assigned", "Medical"))
        self.assertEqual(f.row(2), ("needs_reprocess", None))

    def test_mega_channel_threshold_and_skip_list(self):
        f = self.f
        # 3 catalogue rows in "Big": with --threshold 3 it is not mega (strictly more).
        f.doc(1, "Big", [["Medical", "Security"]])
        f.doc(2, "Big", [["Security"]])
        f.doc(3, "Big", None, status="catalogued")
        f.doc(4, "Transcript", [["Medical", "Security"]])
        f.doc(5, "Transcript", [["Security"]])
        f.run("backfill")
        f.run("tiebreaker", "--threshold", "3")
        self.assertEqual(f.row(1), ("tied_pass_2", "Security"))
        self.assertEqual(f.row(4), ("tied_manual", "Medical"))       # default skip list
        f.conn.execute("UPDATE documents SET recon_domain_status = 'tied_pass_1', recon_domain = NULL "
                       "WHERE hash IN (?, ?)", (h(1), h(4)))
        f.conn.commit()
        f.run("tiebreaker", "--threshold", "2", "--skip")
        self.assertEqual(f.row(1), ("tied_manual", "Medical"))       # 3 > 2: mega
        self.assertEqual(f.row(4), ("tied_pass_2", "Security"))      # empty skip list

    def test_bad_hash_is_never_a_path(self):
        f = self.f
        evil = os.path.join(f.concepts, "..", "evil")
        os.mkdir(evil)
        with open(os.path.join(evil, "window_0001.json"), "w") as fh:
            json.dump([{"domain": "Medical"}], fh)
        f.conn.execute("INSERT INTO catalogue(hash, filename, path, source) VALUES ('../evil', 'f', 'p', ?)", (SRC,))
        f.conn.execute("INSERT INTO documents(hash, filename, status) VALUES ('../evil', 'f', 'complete')")
        f.conn.commit()
        out = f.run("backfill")
        self.assertEqual(out["rows"], {"../evil": ["needs_reprocess", None]})

    def test_any_safe_component_is_read_and_nothing_else(self):
        f = self.f
        sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        good = {sha: "Medical", "AbC": "Security", "x": "Logistics", "Q" * 128: "Navigation"}
        bad = {"a b": "Medical", "a.b": "Medical", "a-b": "Medical", "caf\u00e9": "Medical",
               "Q" * 129: "Medical", "": "Medical"}
        for n, (hh, label) in enumerate(list(good.items()) + list(bad.items())):
            f.conn.execute("INSERT INTO catalogue(hash, filename, path, source, discovered_at) "
                           "VALUES (?, 'f', 'p', ?, ?)", (hh, SRC, f"2024-01-01 00:00:{n:02d}"))
            f.conn.execute("INSERT INTO documents(hash, filename, status, discovered_at) "
                           "VALUES (?, 'f', 'complete', ?)", (hh, f"2024-01-01 00:00:{n:02d}"))
            if hh:
                d = os.path.join(f.concepts, hh)
                os.mkdir(d)
                with open(os.path.join(d, "window_0001.json"), "w") as fh:
                    json.dump([{"domain": label}], fh)
        f.conn.commit()
        rows = f.run("backfill")["rows"]
        for hh, label in good.items():
            self.assertEqual(rows[hh], ["assigned", label], hh)
        for hh in bad:
            self.assertEqual(rows[hh], ["needs_reprocess", None], hh)
        self.assertTrue(rr.HASH_RE.match("Z" * 128) and not rr.HASH_RE.match("abc\n"))


if __name__ == "__main__":
    unittest.main()

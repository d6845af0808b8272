#!/usr/bin/env python3
"""Simulates RECON's own writers (its StatusDB) on a recon.db, to measure how
long they wait for the companion's write transactions.

    recon_writers.py --db X [--threads 3] [--min-sleep-ms 2] [--max-sleep-ms 20]

Each thread opens its own sqlite3.connect(db, timeout=5) with Python's
default isolation (deferred transactions, as RECON) and loops: one small
INSERT into bench_recon_writes (created if missing, so RECON's rows are
untouched while the db-wide write lock is the same), commit(), then a random
2-20 ms sleep. Each write (execute + commit) is timed with perf_counter().
Runs until stdin closes or SIGTERM/SIGINT, then prints one JSON line:
{"writes": n, "errors": n, "error_kinds": {...}, "max_ms": x, "p99_ms": x, "p50_ms": x,
 "lock_max_ms": x, "lock_p99_ms": x, "commit_max_ms": x, "commit_p99_ms": x}
(lock: the INSERT, where a wait for another writer's lock is; commit: WAL
append, fsync and any checkpoint).
A "database is locked" error is counted (RECON would log it), never fatal.
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time

TABLE = "CREATE TABLE IF NOT EXISTS bench_recon_writes(id INTEGER PRIMARY KEY, thread INTEGER, at REAL)"


def percentile(sorted_ms, q):
    if not sorted_ms:
        return 0.0
    i = min(len(sorted_ms) - 1, max(0, int(round(q * (len(sorted_ms) - 1)))))
    return sorted_ms[i]


def writer(db, n, stop, lock, times, kinds, sleeps):
    rng = random.Random(n)
    con = sqlite3.connect(db, timeout=5)
    try:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                con.execute("INSERT INTO bench_recon_writes(thread, at) VALUES (?, ?)", (n, time.time()))
                # The INSERT took the write lock (any wait for another writer
                # is here); the commit is the WAL append, its fsync, and a
                # checkpoint when this commit's WAL passed 1000 pages.
                locked = time.perf_counter()
                con.commit()
                done = time.perf_counter()
                with lock:
                    times.append(((done - t) * 1000.0, (locked - t) * 1000.0, (done - locked) * 1000.0))
            except sqlite3.Error as e:
                kind = str(e) or type(e).__name__
                with lock:
                    kinds[kind] = kinds.get(kind, 0) + 1
                try:
                    con.rollback()
                except sqlite3.Error:
                    pass
            stop.wait(rng.uniform(*sleeps) / 1000.0)
    finally:
        con.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True)
    p.add_argument("--threads", type=int, default=3)
    p.add_argument("--min-sleep-ms", type=float, default=2.0)
    p.add_argument("--max-sleep-ms", type=float, default=20.0)
    a = p.parse_args(argv)

    con = sqlite3.connect(a.db, timeout=5)
    con.execute(TABLE)
    con.commit()
    con.close()

    stop = threading.Event()
    lock = threading.Lock()
    times, kinds = [], {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin():
        # os.read on the raw fd: no buffered reader's lock held at shutdown.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    threads = [
        threading.Thread(target=writer, args=(a.db, n, stop, lock, times, kinds, (a.min_sleep_ms, a.max_sleep_ms)))
        for n in range(a.threads)
    ]
    for t in threads:
        t.start()
    # The main thread waits in short steps so signal handlers run promptly.
    while not stop.is_set():
        stop.wait(0.05)
    for t in threads:
        t.join()

    ms = sorted(t[0] for t in times)
    lock_ms = sorted(t[1] for t in times)
    commit_ms = sorted(t[2] for t in times)
    print(json.dumps({
        "writes": len(ms),
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "max_ms": round(ms[-1], 3) if ms else 0.0,
        "p99_ms": round(percentile(ms, 0.99), 3),
        "p50_ms": round(percentile(ms, 0.50), 3),
        "lock_max_ms": round(lock_ms[-1], 3) if lock_ms else 0.0,
        "lock_p99_ms": round(percentile(lock_ms, 0.99), 3),
        "commit_max_ms": round(commit_ms[-1], 3) if commit_ms else 0.0,
        "commit_p99_ms": round(percentile(commit_ms, 0.99), 3),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

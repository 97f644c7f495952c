#!/usr/bin/env python3
"""The plain-SQLite baseline of `agora-bench ledger`: what a careful script gets from SQLite alone.

The anchor of docs/benchmarks.md's ledger figures (277 transfers/s at one transfer per commit,
about 19,000 at 100, about 45,000 at 8,190 on this kind of machine): SQLite in WAL mode with
synchronous=FULL, and for each transfer one INSERT of the transfer and two UPDATEs of the
accounts' balances, committed a batch at a time. No idempotency, no limits, no history of
balances, no hash chain: the floor that a ledger on SQLite has to be compared with.

Runs each batch size for about --seconds (at least one batch), and prints one JSON object per
batch size on stdout: {"batch": 100, "transfers": 38100, "seconds": 2.0, "per_second": 19050.0}.
"""

import argparse
import json
import random
import sqlite3
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="the SQLite file to create")
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        help="transfers per commit, repeatable (default: 1, 100 and 8190)",
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="time spent on each batch size"
    )
    parser.add_argument(
        "--accounts", type=int, default=1000, help="accounts the transfers move between"
    )
    return parser.parse_args()


def main():
    args = parse_args()
    batches = args.batch or [1, 100, 8190]
    connection = sqlite3.connect(args.database, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, debits INTEGER NOT NULL, "
        "credits INTEGER NOT NULL)"
    )
    connection.execute(
        "CREATE TABLE transfers (id INTEGER PRIMARY KEY, debit_account INTEGER NOT NULL, "
        "credit_account INTEGER NOT NULL, amount INTEGER NOT NULL, created_at_us INTEGER NOT NULL)"
    )
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO accounts (id, debits, credits) VALUES (?, 0, 0)",
        ((account,) for account in range(args.accounts)),
    )
    connection.execute("COMMIT")

    rng = random.Random(7)
    next_id = 1
    for batch in batches:
        transfers = 0
        started = time.perf_counter()
        while True:
            connection.execute("BEGIN")
            for _ in range(batch):
                debit = rng.randrange(args.accounts)
                credit = (debit + 1 + rng.randrange(args.accounts - 1)) % args.accounts
                connection.execute(
                    "INSERT INTO transfers (id, debit_account, credit_account, amount, created_at_us) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (next_id, debit, credit, 1, time.time_ns() // 1000),
                )
                connection.execute(
                    "UPDATE accounts SET debits = debits + ? WHERE id = ?", (1, debit)
                )
                connection.execute(
                    "UPDATE accounts SET credits = credits + ? WHERE id = ?", (1, credit)
                )
                next_id += 1
            connection.execute("COMMIT")
            transfers += batch
            seconds = time.perf_counter() - started
            if seconds >= args.seconds:
                break
        print(
            json.dumps(
                {
                    "batch": batch,
                    "transfers": transfers,
                    "seconds": seconds,
                    "per_second": transfers / seconds,
                }
            ),
            flush=True,
        )
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Times hand-written aggregate queries in DuckDB over the Parquet files query-bench wrote.

query-bench (crates/agora-query/src/bin/query-bench.rs) runs this script itself, in the same
run and over the same files, and prints DuckDB's times beside DataFusion's and the governed
engine's. It reads a JSON document on standard input:

    {"dir": "/tmp/agora-query-bench-123", "threads": 2, "iterations": 5,
     "cutoff_micros": 1700000000000000,
     "queries": [{"name": "revenue by region", "sql": "SELECT … WHERE day <= {cutoff} …"}]}

and writes one JSON line per query on standard output:
{"name": …, "median_ms": …, "rows": …}. `{cutoff}` becomes `make_timestamp(cutoff_micros)`.
Needs `pip install duckdb`.
"""

import json
import statistics
import sys
import time

try:
    import duckdb
except ImportError:
    print("duckdb is not installed: pip install duckdb", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    request = json.load(sys.stdin)
    connection = duckdb.connect(":memory:")
    connection.execute(f"SET threads = {int(request['threads'])}")
    directory = request["dir"].replace("'", "''")
    # A view, not a table: every query reads the Parquet files, as DataFusion does.
    connection.execute(
        f"CREATE VIEW sales AS SELECT * FROM read_parquet('{directory}/*.parquet')"
    )
    cutoff = f"make_timestamp({int(request['cutoff_micros'])})"
    iterations = int(request["iterations"])
    for query in request["queries"]:
        sql = query["sql"].replace("{cutoff}", cutoff)
        times = []
        rows = 0
        # One warm-up run, as query-bench does, then the measured ones.
        for iteration in range(iterations + 1):
            started = time.perf_counter()
            rows = len(connection.execute(sql).fetchall())
            elapsed = (time.perf_counter() - started) * 1000.0
            if iteration > 0:
                times.append(elapsed)
        print(
            json.dumps(
                {
                    "name": query["name"],
                    "median_ms": statistics.median(times),
                    "rows": rows,
                    "version": duckdb.__version__,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

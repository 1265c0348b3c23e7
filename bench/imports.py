"""A 100,000-code CSV import as a whole process, start-up included, against a
whole-process floor, on SQLite and PostgreSQL.

- Kodomat: `kiosk import-codes FILE --library bench --platform legimi --month …`,
  as staff run it (its database from DATABASE_URL, its instance from KIOSK_INSTANCE).
- floor: a `python` process that reads the same file raw and inserts its values
  into the same `codes` table (and one row into `pools`) with the bare driver, in
  one transaction: sqlite3's executemany at Kodomat's PRAGMAs (WAL,
  synchronous=FULL, foreign keys on), psycopg's COPY on PostgreSQL.

Each process gets a fresh database, migrated beforehand (not timed); Kodomat and
the floor run back to back, three times; the table gives the medians, and how much
of Kodomat's time its start-up alone takes (`kiosk --help`: the app created, no work).

    python bench/imports.py [--codes 100000] [--runs 3]
PostgreSQL is measured when BENCH_DATABASE_URL or TEST_DATABASE_URL is set (a
schema of its own per run, dropped after).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]
MONTH = "2020-01"

# The floors: the file read raw, its values inserted with the bare driver. argv:
# the file, then the database (a SQLite path, or a libpq URL).
SQLITE_FLOOR = """
import sqlite3, sys
values = open(sys.argv[1], encoding="utf-8").read().split()[1:]
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
db.execute("PRAGMA foreign_keys = ON")
db.execute("BEGIN IMMEDIATE")
pool = db.execute("INSERT INTO pools (library_id, platform_id, valid_from, valid_until, code_count, "
                  "source_filename, source_sha256, imported_by, imported_at) "
                  "VALUES (1, 1, '2020-01-01', '2020-01-31', ?, 'f', 'x', 'floor', '2020-01-01 00:00:00') "
                  "RETURNING id", (len(values),)).fetchone()[0]
db.executemany("INSERT INTO codes (pool_id, platform_id, value, status) VALUES (?, 1, ?, 'available')",
               ((pool, value) for value in values))
db.execute("COMMIT")
"""
POSTGRES_FLOOR = """
import psycopg, sys
values = open(sys.argv[1], encoding="utf-8").read().split()[1:]
with psycopg.connect(sys.argv[2]) as db:
    pool = db.execute("INSERT INTO pools (library_id, platform_id, valid_from, valid_until, code_count, "
                      "source_filename, source_sha256, imported_by, imported_at) "
                      "VALUES (1, 1, '2020-01-01', '2020-01-31', %s, 'f', 'x', 'floor', now()) "
                      "RETURNING id", (len(values),)).fetchone()[0]
    with db.cursor().copy("COPY codes (pool_id, platform_id, value, status) FROM STDIN") as copy:
        copy.write("".join(f"{pool}\\t1\\t{value}\\tavailable\\n" for value in values))
"""


def write_file(path: Path, count: int) -> None:
    """A panel's CSV: a header, then codes in no order (as a platform's are)."""
    rng = random.Random(13)
    alphabet = string.ascii_uppercase + string.digits
    values = {"".join(rng.choices(alphabet, k=12)) for _ in range(count * 2)}
    path.write_text("Kod\n" + "\n".join(sorted(values, key=lambda _v: rng.random())[:count]) + "\n")


def kiosk(env: dict, *args: str) -> None:
    subprocess.run([*KIOSK, *args], env=env, cwd=PROJECT, check=True, capture_output=True)


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]}… failed:\n{done.stdout}{done.stderr}")
    return took


class Databases:
    """Fresh databases, each migrated with one library: SQLite files copied from a
    template migrated once; PostgreSQL schemas migrated one by one."""

    def __init__(self, folder: Path, postgres: str | None):
        self.folder, self.postgres, self.schemas = folder, postgres, []
        self.template = folder / "template.db"
        self.prepare({**os.environ, "KIOSK_INSTANCE": str(folder), "DATABASE_URL": f"sqlite:///{self.template}"})

    @staticmethod
    def prepare(env: dict) -> None:
        kiosk(env, "db", "upgrade")
        kiosk(env, "add-library", "bench", "--name", "Bench")

    def fresh(self, kind: str) -> tuple[str, str]:
        """(the URL Kodomat is given, what the floor connects to)."""
        if kind == "sqlite":
            path = self.folder / f"bench-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self.template, path)
            return f"sqlite:///{path}", str(path)
        from sqlalchemy import create_engine, text

        schema = f"kodomat_bench_imports_{uuid.uuid4().hex[:8]}"
        with create_engine(self.sqlalchemy_url()).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        scoped = f"{self.postgres}{'&' if '?' in self.postgres else '?'}options=-csearch_path%3D{schema}"
        self.prepare({**os.environ, "KIOSK_INSTANCE": str(self.folder), "DATABASE_URL": scoped})
        return scoped, scoped

    def sqlalchemy_url(self) -> str:
        from kiosk.storage.database import normalise_database_url

        return normalise_database_url(self.postgres)

    def drop(self) -> None:
        if not self.schemas:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(self.sqlalchemy_url())
        with engine.begin() as conn:
            for schema in self.schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def one_run(kind: str, databases: Databases, folder: Path, data: Path) -> tuple[float, float, float]:
    """(Kodomat's import, its start-up alone, the floor), in seconds."""
    url, _ = databases.fresh(kind)
    env = {**os.environ, "KIOSK_INSTANCE": str(folder), "DATABASE_URL": url}
    ours = timed([*KIOSK, "import-codes", str(data), "--library", "bench", "--platform", "legimi",
                  "--month", MONTH], env)
    start_up = timed([*KIOSK, "--help"], env)
    _, target = databases.fresh(kind)
    floor = timed([sys.executable, "-c", SQLITE_FLOOR if kind == "sqlite" else POSTGRES_FLOOR, str(data),
                   target], os.environ)
    return ours, start_up, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    kinds = ["sqlite"] + (["postgresql"] if postgres else [])

    print(f"{args.codes:,}-code CSV, whole processes (start-up included), medians of {args.runs}; "
          f"{os.cpu_count()} cores; Python {sys.version.split()[0]}")
    print()
    print("| database | Kodomat s | floor s | ratio | of Kodomat's, start-up (`kiosk --help`) s |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "codes.csv"
        write_file(data, args.codes)
        databases = Databases(folder, postgres)
        try:
            for kind in kinds:
                runs = [one_run(kind, databases, folder, data) for _ in range(args.runs)]
                ours, start_up, floor = (statistics.median(run[n] for run in runs) for n in range(3))
                print(f"| {kind} | {ours:.2f} | {floor:.2f} | {ours / floor:.1f}× | {start_up:.2f} |", flush=True)
        finally:
            databases.drop()


if __name__ == "__main__":
    main()

"""How long the `kiosk` command takes as a whole process, start-up included, against
the floor of the same run: `python -c pass` (the interpreter alone) and
`python -c "import flask"` (the least a Flask CLI can load); `import flask_sqlalchemy`
is shown too, the least a command that reads the database can load.

Every command runs in a fresh process from this project's code (PYTHONPATH set to
it, so a worktree measures itself), on a throwaway SQLite instance made by
`kiosk db upgrade` and `kiosk demo`. The runs go round-robin, so a busy moment of
the machine falls on every row alike; each row is the median of --runs.

    python bench/cli_start.py [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KIOSK = str(Path(sys.executable).with_name("kiosk"))

FLOORS = [
    ("`python -c pass`", [PYTHON, "-c", "pass"], (0,)),
    ("`python -c \"import flask\"`", [PYTHON, "-c", "import flask"], (0,)),
]
# Not a floor of `--help`, but of any command that reads the database: what the models stand on.
STORAGE = ("`python -c \"import flask_sqlalchemy\"`", [PYTHON, "-c", "import flask_sqlalchemy"], (0,))
COMMANDS = [
    ("`kiosk --help`", [KIOSK, "--help"], (0,)),
    ("`kiosk issue --help`", [KIOSK, "issue", "--help"], (0,)),
    ("`kiosk pools` (the demo pool)", [KIOSK, "pools"], (0,)),
    # A dry run answers as a desk would and writes nothing: the issuing path without a write.
    ("`kiosk issue --dry-run` (demo)", [KIOSK, "issue", "--library", "demo", "--card", "12345678", "--dry-run"],
     (0, 1)),
]


def environment(instance: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "FLASK_APP")}
    env["KIOSK_INSTANCE"] = str(instance)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def run_once(argv: list[str], env: dict[str, str], expected: tuple[int, ...]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in expected:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = FLOORS + [STORAGE] + COMMANDS
    with tempfile.TemporaryDirectory(prefix="kodomat-cli-") as folder:
        env = environment(Path(folder))
        for setup in (["db", "upgrade"], ["demo"]):
            run_once([KIOSK, *setup], env, (0,))
        for _label, argv, expected in rows:  # warm up: the file system's caches, .pyc files
            run_once(argv, env, expected)
        times: dict[str, list[float]] = {label: [] for label, _argv, _expected in rows}
        for _ in range(args.runs):
            for label, argv, expected in rows:
                times[label].append(run_once(argv, env, expected))
    median = {label: statistics.median(values) * 1e3 for label, values in times.items()}
    bare, flask = (median[label] for label, _argv, _expected in FLOORS)
    print(f"whole processes, median of {args.runs} runs each (round-robin); Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    print()
    print("| what | median ms | ÷ `python -c pass` | ÷ `import flask` |")
    print("|---|---:|---:|---:|")
    for label, _argv, _expected in rows:
        print(f"| {label} | {median[label]:.0f} | {median[label] / bare:.1f}× | {median[label] / flask:.1f}× |")


if __name__ == "__main__":
    main()

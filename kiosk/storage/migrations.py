"""The schema revisions this program's migrations end in, read from the migration
files themselves: cheap enough for every health check, and without loading alembic,
which a server does not otherwise need (wsgi.py)."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@lru_cache(maxsize=1)
def code_schema_heads() -> frozenset[str]:
    """The revisions no other migration builds on (one, unless branches were made)."""
    revisions, built_on = set(), set()
    for path in VERSIONS.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN.search(source)
        if down:
            built_on.update(re.findall(r"['\"](\w+)['\"]", down.group(1)))
    return frozenset(revisions - built_on)

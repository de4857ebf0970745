"""The report archive: one folder per report, each with a manifest of its files' SHA-256, and a chain.

`reports/chain.jsonl` holds one entry per report, in the order they were archived; each entry carries
the SHA-256 of its folder's manifest and of the previous entry, and its own hash over both. Editing,
deleting or adding a report file, reordering entries or rewriting one breaks the chain at that report,
which `dbaudit reports --verify` names. (Whoever can rewrite the whole archive can rewrite the chain
too: keep a copy of the newest entry hash elsewhere, e.g. in the change ticket, to pin it.)

`index.html` and `history.html` are derived from the chain and the folders, rewritten atomically after
each report. Which result documents make which kind of report is the data in KINDS: a new kind of
report is one `register_kind` call.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.outputs import html as html_parts
from dbaudit.outputs.provenance import sha256_of

CHAIN = "chain.jsonl"
MANIFEST = "manifest.json"
MANIFEST_KIND = "dbaudit.report-manifest"
RESULT_FILE = "result.json"
GENESIS = "0" * 64


# --- kinds of report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportKind:
    """How the index reads one kind of result document: its label and what it is about."""

    label: str  # audit, compare, dump, restore, rehearsal …
    database: Callable[[dict[str, Any]], str]


def side(key: str | None = None) -> Callable[[dict[str, Any]], str]:
    """The database a document names at `key` (a side such as "after"), or at its top level."""

    def read(data: dict[str, Any]) -> str:
        found = data.get(key) if key else data
        if not isinstance(found, dict) or not found.get("database"):
            return ""
        product = f" ({found['product']})" if found.get("product") else ""
        return f"{found['database']}{product}"

    return read


def _dump_subject(data: dict[str, Any]) -> str:
    dump = data.get("dump") or {}
    header, file = dump.get("header") or {}, dump.get("file") or {}
    return str(header.get("database") or Path(str(file.get("path", ""))).name)


KINDS: dict[str, ReportKind] = {
    "dbaudit.result": ReportKind("audit", side("after")),
    "dbaudit.compare": ReportKind("compare", side("b")),
    "dbaudit.dump-check": ReportKind("dump", _dump_subject),
    "dbaudit.restore-check": ReportKind("restore", side()),
    "dbaudit.rollback": ReportKind("rollback", side()),
    "dbaudit.rehearsal": ReportKind("rehearsal", side()),
}


def register_kind(document_kind: str, label: str,
                  database: Callable[[dict[str, Any]], str] | None = None) -> None:
    """Teach the index a new kind of result document (its `kind:` field)."""
    KINDS[document_kind] = ReportKind(label, database or side())


def kind_label(document_kind: str) -> str:
    found = KINDS.get(document_kind)
    return found.label if found else (document_kind.removeprefix("dbaudit.") or "report")


# --- manifests and the chain ---------------------------------------------------------------------


def _files(folder: Path) -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(folder)): {"sha256": sha256_of(p), "size": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def write_manifest(folder: Path) -> str:
    """The SHA-256 and size of every file in a finished report folder; returns the manifest's own hash."""
    text = serde.dumps({"format_version": 1, "kind": MANIFEST_KIND, "folder": folder.name, "files": _files(folder)})
    serde.write_atomic(folder / MANIFEST, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Entry:
    """One archived report in the chain."""

    seq: int
    folder: str
    kind: str  # the index's label: audit, compare, dump, restore …
    title: str
    database: str
    verdict: str
    failed: int  # failed checks
    created: str
    manifest_sha256: str
    previous: str  # the previous entry's hash (GENESIS for the first)
    hash: str = ""

    def compute_hash(self) -> str:
        body = {k: v for k, v in asdict(self).items() if k != "hash"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def read_chain(root: Path) -> list[Entry]:
    path = root / CHAIN
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(Entry(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise DbauditError(f"{path}:{number}: not a chain entry ({exc})") from None
    return entries


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One writer of the chain at a time (two reports finishing together)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".archive.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def summary(folder: Path) -> dict[str, Any]:
    """What the index shows of a report, read from its result document."""
    try:
        data = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    document_kind = str(data.get("kind", ""))
    found = KINDS.get(document_kind)
    found_checks = data.get("checks")
    checks: list[Any] = found_checks if isinstance(found_checks, list) else []
    return {"kind": kind_label(document_kind) if document_kind else "report",
            "title": str(data.get("title") or folder.name), "database": found.database(data) if found else "",
            "verdict": str(data.get("verdict") or "—"), "created": str(data.get("generated_at") or folder.name[:16]),
            "failed": sum(1 for c in checks if isinstance(c, dict) and c.get("status") == "fail")}


def append(root: Path, folder: Path) -> Entry:
    """Seal a finished report folder (manifest) and chain it; the chain file is replaced atomically."""
    with locked(root):
        entries = read_chain(root)
        manifest = write_manifest(folder)
        info = summary(folder)
        entry = Entry(len(entries) + 1, folder.name, info["kind"], info["title"], info["database"], info["verdict"],
                      info["failed"], info["created"], manifest, entries[-1].hash if entries else GENESIS)
        entry.hash = entry.compute_hash()
        lines = [json.dumps(asdict(e), sort_keys=True, ensure_ascii=False) for e in [*entries, entry]]
        serde.write_atomic(root / CHAIN, "\n".join(lines) + "\n")
        return entry


# --- verification -----------------------------------------------------------------------------------


@dataclass
class Problem:
    folder: str
    what: str

    def __str__(self) -> str:
        return f"{self.folder}: {self.what}"


def verify(out_dir: str | os.PathLike[str]) -> tuple[list[Entry], Problem | None]:
    """Recompute the chain and every manifest; the first report altered, missing or unchained, if any."""
    root = Path(out_dir)
    if not root.is_dir():
        raise DbauditError(f"no report archive at {root}")
    entries = read_chain(root)
    previous = GENESIS
    for entry in entries:
        problem = _verify_entry(root, entry, previous)
        if problem:
            return entries, problem
        previous = entry.hash
    chained = {e.folder for e in entries}
    for page in sorted(root.glob("*/report.html")):
        if page.parent.name not in chained:
            return entries, Problem(page.parent.name, "not in the archive chain (added afterwards, or archived by "
                                                      "a dbaudit before 0.2)")
    return entries, None


def _verify_entry(root: Path, entry: Entry, previous: str) -> Problem | None:
    if entry.previous != previous:
        return Problem(entry.folder, f"chain broken before entry {entry.seq} (an entry was removed or reordered)")
    if entry.compute_hash() != entry.hash:
        return Problem(entry.folder, f"chain entry {entry.seq} was edited")
    folder = root / entry.folder
    manifest = folder / MANIFEST
    if not folder.is_dir():
        return Problem(entry.folder, "report folder is missing (deleted or renamed)")
    if not manifest.is_file():
        return Problem(entry.folder, "manifest.json is missing")
    if sha256_of(manifest) != entry.manifest_sha256:
        return Problem(entry.folder, "manifest.json was altered")
    listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
    present = _files(folder)
    for name, recorded in listed.items():
        if name not in present:
            return Problem(entry.folder, f"{name} is missing")
        if present[name]["sha256"] != recorded.get("sha256"):
            return Problem(entry.folder, f"{name} was altered (SHA-256 {present[name]['sha256']}, "
                                         f"archived {recorded.get('sha256')})")
    extra = sorted(set(present) - set(listed))
    if extra:
        return Problem(entry.folder, f"{extra[0]} was added after the report was archived")
    return None


# --- listing, the index and the history page ----------------------------------------------------------


@dataclass
class ArchivedReport:
    folder: str
    created: str
    title: str
    database: str
    verdict: str
    kind: str = "report"
    failed: int = 0
    hash: str = ""  # its chain entry's hash; empty: not in the chain
    history: list[str] = field(default_factory=list)


def list_reports(out_dir: str | os.PathLike[str] = "reports") -> list[ArchivedReport]:
    """Every report folder under out_dir, newest first (chained or not; set-aside .failed folders never)."""
    root = Path(out_dir)
    chained = {e.folder: e for e in read_chain(root)} if root.is_dir() else {}
    found = []
    for page in sorted(root.glob("*/report.html"), reverse=True):
        folder = page.parent
        if folder.name.endswith(".failed"):
            continue
        entry = chained.get(folder.name)
        if entry is not None:
            found.append(ArchivedReport(entry.folder, entry.created, entry.title, entry.database, entry.verdict,
                                        entry.kind, entry.failed, entry.hash))
        else:
            info = summary(folder)
            found.append(ArchivedReport(folder.name, info["created"], info["title"], info["database"],
                                        info["verdict"], info["kind"], info["failed"]))
    return found


_INDEX = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<title>dbaudit report archive: {{ reports | length }} report(s)</title>
<style>body{font-family:sans-serif;margin:2em}{{ style | safe }}
td.verdict-pass{background:#1a7f37;color:#fff;font-weight:600}td.verdict-fail{background:#cf222e;color:#fff;
font-weight:600}</style></head><body>
<h1>dbaudit report archive</h1>
<p>{{ reports | length }} report(s), newest first. <code>dbaudit reports --verify</code> recomputes every report's
manifest and the chain of entry hashes.{% if history %} <a href="history.html">History</a> of
{{ history | length }} database(s) audited more than once.{% endif %}</p>
<table class="dbaudit-table"><thead><tr><th>time (UTC)</th><th>kind</th><th>report</th><th>database</th>
<th>verdict</th><th>failed checks</th><th>chain entry SHA-256</th></tr></thead><tbody>
{% for r in reports %}<tr><td>{{ r.created }}</td><td>{{ r.kind }}</td>\
<td><a href="{{ r.href }}">{{ r.title }}</a></td><td>{{ r.database or '—' }}</td>\
<td class="verdict-{{ r.verdict | lower }}">{{ r.verdict | upper }}</td><td class="num" data-sort="{{ r.failed }}">\
{{ r.failed }}</td><td class="mono">{{ r.hash or 'not in the chain' }}</td></tr>
{% endfor %}</tbody></table>
<script>{{ script | safe }}</script>
</body></html>
"""


def write_index(out_dir: str | os.PathLike[str] = "reports") -> Path:
    """index.html (and history.html) from the archive, each written atomically."""
    root = Path(out_dir)
    reports = list_reports(root)
    histories = history_data(root, reports)
    rows = [{**asdict(r), "href": quote(r.folder) + "/report.html"} for r in reports]
    page = html_parts.ENV.from_string(_INDEX).render(
        reports=rows, history=histories, csp=html_parts.content_security_policy(),
        style=html_parts.STYLE, script=html_parts.SCRIPT)
    target = serde.write_atomic(root / "index.html", page)
    if histories:
        serde.write_atomic(root / "history.html", history_page(histories))
    return target


@dataclass
class History:
    database: str
    taken: list[str]  # snapshot times, oldest first
    rows: dict[str, list[int | None]]  # table -> row count at each snapshot (None: absent or not counted)
    audits: list[tuple[str, str, int]]  # (generated at, report folder, schema changes) per audit


def history_data(root: Path, reports: list[ArchivedReport] | None = None) -> list[History]:
    """Databases audited more than once: their snapshots' row counts and each audit's schema changes."""
    from dbaudit.core.snapshot import load_snapshot

    audits: dict[str, list[ArchivedReport]] = defaultdict(list)
    for r in reports if reports is not None else list_reports(root):
        if r.kind == "audit" and r.database:
            audits[r.database].append(r)
    histories = []
    for database, found in sorted(audits.items()):
        if len(found) < 2:
            continue
        counts: dict[str, dict[str, int | None]] = {}
        changes = []
        for r in sorted(found, key=lambda r: r.created):
            folder = root / r.folder
            for name in ("before.json", "after.json"):
                try:
                    snap = load_snapshot(folder / name)
                except (DbauditError, OSError):
                    continue
                counts[snap.taken_at] = {t.name: t.row_count for t in snap.tables.values()}
            try:
                result = json.loads((folder / RESULT_FILE).read_text(encoding="utf-8"))
                changes.append((r.created, r.folder, int(result.get("summary", {}).get("schema_changes", 0))))
            except (OSError, ValueError, TypeError, AttributeError):
                continue
        taken = sorted(counts)
        tables = sorted({t for c in counts.values() for t in c})
        histories.append(History(database, taken, {t: [counts[s].get(t) for s in taken] for t in tables}, changes))
    return histories


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def history_charts(history: History, limit: int = 12) -> tuple[str, str, str]:
    """Two inline PNGs (rows per table over time, schema changes per audit) and what the first leaves out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def spread(values: list[int | None]) -> int:
        known = [v for v in values if v is not None]
        return (max(known) - min(known)) if known else -1

    moving = sorted(history.rows, key=lambda t: (-spread(history.rows[t]), t))
    shown = moving[:limit]
    left_out = len(moving) - len(shown)
    figure, axis = plt.subplots(figsize=(9, 4))
    for table in shown:
        axis.plot(range(len(history.taken)), [float("nan") if v is None else v for v in history.rows[table]],
                  marker="o", label=html_parts.plain_label(table))
    axis.set_xticks(range(len(history.taken)), [t[:19] for t in history.taken], rotation=30, ha="right",
                    fontsize=8)
    axis.set_ylabel("rows")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    axis.set_title("Rows per table at each archived snapshot" + (f" ({len(shown)} tables that moved most; "
                   f"{left_out} steadier ones left out)" if left_out else ""), fontsize=10, loc="left")
    figure.tight_layout()
    rows_png = _png(figure)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(9, 2.8))
    axis.bar(range(len(history.audits)), [n for _, _, n in history.audits], color="#0969da")
    axis.set_xticks(range(len(history.audits)), [t[:19] for t, _, _ in history.audits], rotation=30, ha="right",
                    fontsize=8)
    axis.set_ylabel("schema changes")
    axis.set_title("Schema changes found by each audit", fontsize=10, loc="left")
    figure.tight_layout()
    changes_png = _png(figure)
    plt.close(figure)
    note = f"{left_out} of {len(moving)} tables are not drawn; the table below has them all." if left_out else ""
    return rows_png, changes_png, note


_HISTORY = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>dbaudit history: {{ sections | map(attribute='h.database') | join(', ') }}</title>
<style>body{font-family:sans-serif;margin:2em}{{ style | safe }}</style></head><body>
<h1>History of audited databases</h1><p><a href="index.html">Report archive</a></p>
{% for s in sections %}
<h2>{{ s.h.database }}</h2>
<p>{{ s.h.audits | length }} audits, {{ s.h.taken | length }} snapshots. {{ s.note }}</p>
<img alt="rows per table over time" src="data:image/png;base64,{{ s.rows_png }}">
<img alt="schema changes per audit" src="data:image/png;base64,{{ s.changes_png }}">
<table class="dbaudit-table"><thead><tr><th>table</th>{% for t in s.h.taken %}<th>{{ t }}</th>{% endfor %}</tr>
</thead><tbody>{% for table, values in s.h.rows.items() %}<tr><td>{{ table }}</td>{% for v in values %}\
<td class="num" data-sort="{{ v if v is not none else '' }}">{{ '{:,}'.format(v) if v is not none else '—' }}</td>\
{% endfor %}</tr>{% endfor %}</tbody></table>
<table class="dbaudit-table"><thead><tr><th>audit (UTC)</th><th>report</th><th>schema changes</th></tr></thead>
<tbody>{% for when, folder, n in s.h.audits %}<tr><td>{{ when }}</td><td><a href="{{ folder | urlencode }}/report.html">\
{{ folder }}</a></td><td class="num">{{ n }}</td></tr>{% endfor %}</tbody></table>
{% endfor %}
<script>{{ script | safe }}</script>
</body></html>
"""


def history_page(histories: list[History]) -> str:
    sections = []
    for h in histories:
        rows_png, changes_png, note = history_charts(h)
        sections.append({"h": h, "rows_png": rows_png, "changes_png": changes_png, "note": note})
    return html_parts.ENV.from_string(_HISTORY).render(
        sections=sections, csp=html_parts.content_security_policy(), style=html_parts.STYLE,
        script=html_parts.SCRIPT)

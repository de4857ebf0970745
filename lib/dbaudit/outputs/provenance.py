"""Where a report comes from: when and by which dbaudit it was made, from which command or notebook
parameters (masked), about which servers, judged against which expectations, from which input files
(SHA-256 of each). Gathered when the report folder is filled, saved beside it as provenance.json, and
shown at the top of the report, under the verdict."""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbaudit import __version__
from dbaudit.core import secrets, serde
from dbaudit.outputs.html import Table, render

FILE = "provenance.json"
KIND = "dbaudit.provenance"
FORMAT_VERSION = 1


@dataclass
class InputFile:
    label: str  # before, after, expectations, dump …
    path: str  # as archived in the report folder, or where it was read (a dump is read in place)
    size: int
    sha256: str


@dataclass
class Provenance(serde.Document):
    format_version: int
    kind: str
    generated_at: str
    dbaudit_version: str
    command: str  # the dbaudit command line, URLs masked; empty when not run from the CLI
    parameters: dict[str, str]  # what the notebook was given (file paths only, masked anyway)
    expectations_name: str
    expectations_description: str
    inputs: list[InputFile] = field(default_factory=list)


@dataclass
class ServerSide:
    label: str  # before/after, A/B, dump, restored
    database: str
    product: str
    version: str


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_file(label: str, path: str | os.PathLike[str]) -> InputFile:
    """A file's size and SHA-256; a dump directory (pg_dump -Fd, mydumper) hashes its files in name order."""
    source = Path(path)
    if source.is_dir():
        digest, size = hashlib.sha256(), 0
        for item in sorted(p for p in source.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(source)}\0{sha256_of(item)}\n".encode())
            size += item.stat().st_size
        return InputFile(label, str(source), size, digest.hexdigest())
    return InputFile(label, str(source), source.stat().st_size, sha256_of(source))


def mask(text: str) -> str:
    """An argument or parameter as archived: URLs without their password, no `password=…` in any form a driver
    accepts, no password option of a command line (core.secrets, the one masking function)."""
    return secrets.mask_command(text)


def cli_command(argv: Sequence[str] | None = None) -> str:
    """The dbaudit command line that is running, masked; empty when dbaudit is used as a library."""
    args = list(sys.argv if argv is None else argv)
    program = Path(args[0]) if args else Path()
    if program.name != "dbaudit" and program.parts[-2:] != ("dbaudit", "__main__.py"):
        return ""
    return shlex.join(["dbaudit", *(mask(a) for a in args[1:])])


def gather(inputs: Mapping[str, str | os.PathLike[str] | None], parameters: Mapping[str, Any] | None = None,
           expectations: str | os.PathLike[str] | None = None, command: str | None = None) -> Provenance:
    """Hash every input that exists; read the expectations' name and description when there are some."""
    name = description = ""
    if expectations and str(expectations).endswith((".yml", ".yaml")) and Path(expectations).is_file():
        from dbaudit.audit.expectations import load_expectations

        rules = load_expectations(expectations)
        name, description = rules.name, rules.description
    files = [input_file(label, path) for label, path in inputs.items() if path and Path(path).exists()]
    return Provenance(FORMAT_VERSION, KIND, datetime.now(UTC).isoformat(timespec="seconds"), __version__,
                      cli_command() if command is None else command,
                      {k: mask(str(v)) for k, v in (parameters or {}).items()}, name, description, files)


def load(path: str | os.PathLike[str]) -> Provenance:
    return serde.load_document(Provenance, path, KIND, FORMAT_VERSION, "report provenance")


_BLOCK = """\
<details open class="dbaudit-provenance"><summary><b>Provenance</b>: generated {{ p.generated_at }} by dbaudit \
{{ p.dbaudit_version }}</summary>
<table class="dbaudit-table"><tbody>
<tr><th>generated at (UTC)</th><td>{{ p.generated_at }}</td></tr>
<tr><th>dbaudit version</th><td>{{ p.dbaudit_version }}</td></tr>
{% if p.command %}<tr><th>command</th><td class="mono">{{ p.command }}</td></tr>{% endif %}
{% if p.parameters %}<tr><th>notebook parameters</th><td class="mono">\
{% for k, v in p.parameters.items() %}{{ k }} = {{ v if v != '' else '""' }}{% if not loop.last %}<br>{% endif %}\
{% endfor %}</td></tr>{% endif %}
{% for s in sides %}<tr><th>server ({{ s.label }})</th><td>{{ s.product or '—' }} {{ s.version or '' }}\
{% if s.database %}, database <code>{{ s.database }}</code>{% endif %}</td></tr>{% endfor %}
<tr><th>expectations</th><td>{% if p.expectations_name %}<b>{{ p.expectations_name }}</b>\
{% if p.expectations_description %}: {{ p.expectations_description }}{% endif %}{% else %}none given\
{% endif %}</td></tr>
</tbody></table>
<table class="dbaudit-table"><thead><tr><th>input</th><th>file</th><th>size (bytes)</th><th>SHA-256</th></tr></thead>
<tbody>{% for f in files %}<tr><td class="tight">{{ f.label }}</td><td class="mono">{{ f.path }}</td>\
<td class="num mono" data-sort="{{ f.size }}">{{ '{:,}'.format(f.size) }}</td><td class="mono">{{ f.sha256 }}</td></tr>
{% else %}<tr><td colspan="4">no input files</td></tr>{% endfor %}</tbody></table>
</details>"""


def block(provenance: Provenance, sides: Sequence[ServerSide] = (), extra: Sequence[InputFile] = ()) -> Any:
    """The provenance block a report shows under its verdict."""
    known = {f.path for f in provenance.inputs}
    files = [*provenance.inputs, *(f for f in extra if f.path not in known)]
    return render(_BLOCK, p=provenance, sides=list(sides), files=files)


def inputs_table(provenance: Provenance) -> Table:
    return Table(["input", "file", "size", "sha256"],
                 [[f.label, f.path, f.size, f.sha256] for f in provenance.inputs], mono={"file", "sha256"})

"""The fast path over INSERT tuple lists against the byte-by-byte reference scanner, on random tuple lists.

Each case is a random script of long INSERTs whose tuples mix what mysqldump writes with what it never writes (quotes,
escapes, doubled quotes, lone backslashes, `),(` / `;` / newlines / comment openers inside and outside strings,
negative exponents, variables, NO_BACKSLASH_ESCAPES): whatever the bytes, the fast path must read them exactly as
the reference does (statements, heads, tuple counts, texts, problems, how the script ends), fed in chunks of any size.
"""

from __future__ import annotations

import random

import pytest

from dbaudit.backups.sqlscan import SqlScanner, Statement

# Inside a string: text mysqldump writes, and now and then (_STRAY) what it never writes: a lone backslash or quote,
# which ends the string elsewhere than the tuple's shape says.
_IN_STRING = ["a", "name", "\\'", "\\\\", "''", "),(", ";", ";\n", "\\n", "\n", "--", "-- ", "/*", "*/", "\"", "`",
              "#", "@v", "-", "1960-01-12", "(", ")", ",", "/", "*", "\0", "caf\u00e9", "\\0", "\\Z"]
_STRAY = ["\\", "'", "\\\\\\"]
# A value outside strings.
_VALUES = ["NULL", "-1.5e-3", "1e-5", "-7", "0x2829", "_binary 'b\\0'", "3.25", "-1-2", "X'41'", "''", "'\\''"]
# Rare bytes outside strings: each must send the stretch to the reference scanner (or read the same there). Comments
# hold what would change the count or the strings if read as code.
_ODD = ["-- ),(\n", "/* ),( */", "#),(\n", "-- '),('\n", "/* '),(' */", "#'),('\n", "--\t),(\n", "/*!50000 1,*/",
        "/*!99999 ),( */", "@v", "@'v'", "\\", "\"d),(q\"", "`b),(q`", ";", " ", "\n", "--x", "- -", "/", "*", "()", "(",
        "),(", "\\g", "\\! ls\n", "\0"]


def _string(rng: random.Random, stray: float) -> str:
    atoms = [rng.choice(_STRAY if rng.random() < stray else _IN_STRING) for _ in range(rng.randrange(0, 5))]
    return "'" + "".join(atoms) + "'"


def _tuple(rng: random.Random, n: int, odd: float) -> str:
    values = [str(n)] + [_string(rng, odd / 4) if rng.random() < 0.6 else rng.choice(_VALUES)
                         for _ in range(rng.randrange(1, 5))]
    if rng.random() < odd:
        values.insert(rng.randrange(len(values) + 1), rng.choice(_ODD))
    return "(" + ",".join(values) + ")"


def _script(seed: int) -> bytes:
    rng = random.Random(seed)
    odd = rng.choice([0.0, 0.002, 0.01, 0.05])
    parts = ["SET sql_mode='NO_BACKSLASH_ESCAPES';\n"] if rng.random() < 0.3 else []
    parts.append("CREATE TABLE t (id int, a text, b text, c text, d text);\n")
    for _ in range(rng.randrange(1, 4)):
        tuples = [_tuple(rng, n, odd) for n in range(rng.randrange(1, 900))]
        separators = [""] + [rng.choice([", ", ",\n", " ,"]) if rng.random() < 0.01 else "," for _ in tuples[1:]]
        body = "".join(sep + t for sep, t in zip(separators, tuples))
        parts.append(f"INSERT INTO t VALUES {body};\n" if rng.random() < 0.9 else f"INSERT INTO t VALUES {body};")
    if rng.random() < 0.5:  # and one row per INSERT, as --skip-extended-insert writes them
        parts.extend(f"INSERT INTO t VALUES {_tuple(rng, n, odd)};\n" for n in range(rng.randrange(1, 200)))
    return "".join(parts).encode()


def _read(data: bytes, chunks: list[int], fast: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(SqlScanner, "_tuples_fast", lambda self, buf, i, n, first=False: i)
            patch.setattr(SqlScanner, "_row_run", lambda self, buf, i, n: None)
        found: list[Statement] = []
        scanner = SqlScanner(found.append, keep_text=True)
        at, k = 0, 0
        while at < len(data):
            size = chunks[k % len(chunks)]
            scanner.feed(data[at : at + size])
            at, k = at + size, k + 1
        end = scanner.finish()
    return [(s.head, s.alt_head, s.start, s.end, s.tuples, s.text, s.problems, s.semicolons) for s in found] + [
        (end.problem, end.ambiguities)]


@pytest.mark.parametrize("seed", range(100))
def test_random_tuple_lists_read_the_same_on_the_fast_path_and_byte_by_byte_at_any_chunk_size(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _script(seed)
    rng = random.Random(-seed)
    reference = _read(data, [len(data)], False, monkeypatch)

    for chunks in ([len(data)], [1 << 20], [4096], [97], [rng.randrange(1, 300) for _ in range(50)]):
        assert _read(data, chunks, True, monkeypatch) == reference, chunks


def test_the_fast_path_reads_most_of_a_mysqldump_like_list_and_counts_every_tuple(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    skipped: list[int] = []
    fast = SqlScanner._tuples_fast

    def counted(self: SqlScanner, buf: bytes, i: int, n: int, first: bool = False) -> int:
        skipped.append(fast(self, buf, i, n, first) - i)
        return i + skipped[-1]

    # Strings holding "),(", "--" and escapes; outside them negative exponents, whose dashes look like "--" once the
    # digits between them are dropped: none of that may leave the fast path.
    rows = ",".join(f"({n},'it\\'s ),( {n}','x -- y /* z',NULL,-1.5e-3,'C:\\\\')" for n in range(3000))
    data = f"INSERT INTO t VALUES {rows};\nINSERT INTO t VALUES (1,'a');\n".encode()
    monkeypatch.setattr(SqlScanner, "_tuples_fast", counted)
    found: list[Statement] = []
    scanner = SqlScanner(found.append)
    for at in range(0, len(data), 65536):
        scanner.feed(data[at : at + 65536])
    scanner.finish()

    assert [s.tuples for s in found] == [3000, 1]
    assert sum(skipped) > 0.99 * len(data)


@pytest.mark.parametrize("tail", [b"", b"(", b"(1,'", b"(1,'a\\", b"(1,'a'", b"(1,'a')", b"(1,'a'),", b"(1,'a');",
                                  b"(1,'a'),(2,'b\\'),(3,'c')", b"(1,-- x\n'a')", b"(1,'a')/*"])
def test_a_tuple_list_cut_anywhere_reads_the_same_on_both_paths(tail: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"INSERT INTO t VALUES " + b",".join(b"(%d,'r\\'%d')" % (n, n) for n in range(2000)) + b"," + tail

    reference = _read(data, [len(data)], False, monkeypatch)

    for chunks in ([len(data)], [4096], [7, 997]):
        assert _read(data, chunks, True, monkeypatch) == reference, chunks


def test_a_long_head_keeps_every_byte_across_its_first_4096_at_any_chunk_size() -> None:
    # One long run of code between two events reaches byte 4096 of a statement that is no INSERT: the head used to
    # lose the rest of that run when it then grew to its long limit, so what it held depended on the chunk size.
    columns = ", ".join(f"c{n} int" for n in range(700))
    data = f"CREATE TABLE t ({columns}, last_one int) ENGINE=InnoDB COMMENT='x';\n".encode()
    heads = set()
    for chunk in (len(data), 4096, 97, 7):
        found: list[Statement] = []
        scanner = SqlScanner(found.append)
        for at in range(0, len(data), chunk):
            scanner.feed(data[at : at + chunk])
        scanner.finish()
        heads.add(found[0].head)

    assert heads == {" ".join(data[: data.index(b";")].decode().split())}


def test_statements_sharing_one_line_are_each_read_once_by_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many INSERTs on one line, `;` between them and a newline only at its end: a stretch that fails (it runs to the
    # next `;` + newline, over the statements after it) must not be tried again from each of them.
    read: list[int] = []
    stretch = SqlScanner._stretch

    def counted(self: SqlScanner, data: bytes, terminated: bool, first: bool) -> tuple[int, int] | None:
        read.append(len(data))
        return stretch(self, data, terminated, first)

    rows = ",".join(f"({n},'a')" for n in range(20))
    data = (f"INSERT INTO t VALUES {rows};" * 500 + "\n").encode()
    monkeypatch.setattr(SqlScanner, "_stretch", counted)
    found: list[Statement] = []
    scanner = SqlScanner(found.append)
    scanner.feed(data)
    scanner.finish()

    assert [s.tuples for s in found] == [20] * 500
    assert sum(read) <= 2 * len(data)


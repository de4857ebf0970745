"""The gzip inflater every dump reader uses: ISA-L's where the `isal` wheel is installed, zlib's otherwise.

ISA-L inflates gzip two to three times faster than zlib with the same streaming interface (decompress with a
max_length, unconsumed_tail, unused_data, eof), which is most of what reading a .gz dump costs
(docs/development.md, docs/benchmarks.md).
"""

from __future__ import annotations

import importlib
import zlib
from types import ModuleType
from typing import Any


def _module() -> ModuleType:
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:  # pragma: no cover - a platform without the isal wheel
        return zlib


_INFLATE = _module()
GZIP_ERRORS: tuple[type[Exception], ...] = tuple(dict.fromkeys((zlib.error, _INFLATE.error)))


def gzip_inflater() -> Any:
    """A decompressor for one gzip member."""
    return _INFLATE.decompressobj(wbits=31)

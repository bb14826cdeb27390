"""How much one file may hold: the defaults of the limits every upload must keep.

``[service] max_file_size`` and ``max_rows`` override them; ``watcher
validate`` applies them as they are. A file over a limit fails as a whole with
a reason, so one upload can never exhaust the host's memory.
"""

from __future__ import annotations

__all__ = ["EXPANSION", "MAX_EXPANDED", "MAX_FILE_SIZE", "MAX_ROWS"]

MAX_FILE_SIZE = 100 * 1024**2
MAX_ROWS = 1_000_000
# What a workbook (a zip of XML) may unpack to, in all: a 1,000,000-row sheet
# is about 400 MB of XML.
EXPANSION = 8
MAX_EXPANDED = EXPANSION * MAX_FILE_SIZE

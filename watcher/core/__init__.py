"""The pure core: values in, values out; no clock, no threads, no I/O but reading.

Reading and validating a CSV file, the header schema and its rules, header
matching, the failure report, deciding when an upload is finished and when a
batch is due, the states a batch goes through, and what watchdog events and
SFTP log lines mean. Nothing here imports from :mod:`watcher.config`,
:mod:`watcher.shell` or :mod:`watcher.cli` (a test keeps it so): every module
can be understood, and tested, with values alone.

Only these modules open files, and only to read the one they are handed
(each says so): reading, schema_parser, sheets. Nothing here writes, lists a folder,
reads the clock or starts a thread; ``tests/test_layout.py`` checks every
sentence of this paragraph against the code.
"""

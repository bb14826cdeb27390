"""The pure core: values in, values out; no I/O of its own, no clock, no threads.

Reading and validating a CSV file, the header schema and its rules, header
matching, the failure report, deciding when an upload is finished and when a
batch is due, the states a batch goes through, and what watchdog events and
SFTP log lines mean. Nothing here imports from :mod:`watcher.config`,
:mod:`watcher.shell` or :mod:`watcher.cli` (a test keeps it so): every module
can be understood, and tested, with values alone.
"""

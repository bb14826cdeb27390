"""From a drop folder to files ready for a batch.

The observer (``watching``) and what the SFTP and FTPS servers log
(``logsocket``, ``ftpslog``, ``hearing``) feed one lane's intake (``lane``),
which tells a finished upload from a partial one and closes its batch window.
``dropfolder`` takes files out of a customer's folder (by descriptor, never
following links); ``strays`` reports files that will never be imported.
"""

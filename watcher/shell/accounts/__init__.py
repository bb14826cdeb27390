"""The host's side of a tenant: what ``watcher tenant`` and ``check-config`` touch.

``tenants`` adds and removes an account with its folders, key or password
and configuration; ``ftpsaccounts`` gives it FTPS; ``checkfolder`` makes its
check folder usable by the customer (POSIX ACLs); ``probes`` looks at the
servers a configuration points at.
"""

"""What the running service shows, read-only.

``metrics`` (Prometheus), ``status`` (the status document behind
``watcher status`` and the page) and ``listener`` (the HTTP server of both).
"""

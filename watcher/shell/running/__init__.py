"""The long-running service, from start-up to stop.

``runtime`` opens what every process that runs batches needs (the lock, the
journal, ``ownership`` of tenants, the clock); ``service`` is the loop;
``roster`` keeps the tenants running here and ``tenant`` each one's two
lanes; ``workers`` are the threads that run batches and deliver mail;
``passes`` runs the periodic passes (``retention``, ``schemas``' reloads)
so that none can end the process; ``stopping`` turns signals into a stop
request and ``notify`` speaks systemd's protocol.
"""

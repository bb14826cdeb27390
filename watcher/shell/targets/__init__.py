"""Where valid users go: the User Import API, or the embedded user store.

``sinks`` picks one per tenant; ``api`` sends one POST per user with
tenacity's retries through ``gate``, which admits requests at the learnt
limit, under the rate ceiling and through pauses; ``userstore`` is the
embedded store used when no API is configured.
"""

"""A batch's steps, one state machine for both lanes.

``batches`` moves a batch from step to step in the journal: ``claiming``
(files out of the drop folder), ``importing`` (``validating`` then
``pushing``), ``reports`` (the failure list and email) and ``archiving``
(into ``.bak``). ``checking`` is the check lane's run: validate and answer,
never import. ``context`` is what every step works with.
"""

"""The individual record: one person's row, history, training plans, transcript and
certificates (routes in ``api``, use cases and training's event handlers in ``service``,
rules in ``rules``, queries in ``store``, PDFs in ``certificates``)."""

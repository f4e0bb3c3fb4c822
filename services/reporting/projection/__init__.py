"""The projection: membership events folded into the read model both features read
(the fold in ``rules``, its reads and writes in ``store``, the use case in ``service``)."""

"""A department's activity log: every change to its people, who made it, to whom and when
(the rows in ``rules``, written by the projection through ``store``, read by ``api``)."""

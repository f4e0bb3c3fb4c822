"""The users table: a department's people, filtered, searched, sorted, paged, and exported
as CSV or XLSX (routes in ``api``, use cases in ``service``, views and cursors in
``rules``, queries in ``store``, file formats in ``export``)."""

"""A signed-in person's own records: their record in every department, their certificates."""

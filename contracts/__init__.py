"""Event contracts shared by every service and every subscriber."""

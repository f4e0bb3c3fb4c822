"""prodigy-users: user management for training departments.

The distribution maps the repository's folders into this one namespace:
``services/identity`` is ``prodigy_users.identity``, ``contracts`` is
``prodigy_users.contracts``, and so on (see ``pyproject.toml``).
"""

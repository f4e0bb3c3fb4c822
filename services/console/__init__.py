"""The web console: server-rendered pages for department admins and for the people
who open the links in their emails.

A backend-for-frontend: it calls the four services' public HTTP APIs with the
signed-in person's access token and shows what they answer. It holds no database
and no Kafka of its own, and decides nothing about who may do what.
"""

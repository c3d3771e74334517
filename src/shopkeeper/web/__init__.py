"""The web application: server-rendered pages (Jinja2 + htmx, no build step) for marketers and
agents, served by the same process as the API."""

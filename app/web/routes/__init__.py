"""HTML pages (Jinja2 + htmx). Every module's ``router`` is mounted by create_app."""

"""The admin page's static files (``static/``): HTML, CSS and JavaScript over the management API,
served by :mod:`embedauth.http.admin_page`; no build step, nothing fetched from elsewhere."""

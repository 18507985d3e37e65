"""Real HTTP servers (nginx, Apache, lighttpd, Caddy and Python ones) as pytest fixtures.

See launch.py for starting a server by hand and fixtures.py for the pytest fixtures.
"""

"""hello: the example web application of upds (a WSGI app)."""

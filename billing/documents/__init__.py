"""Invoice documents a customer can read: HTML and PDF, rendered from the published marts.

`invoice.py` turns one invoice's rows into the document's content (pure, no I/O beyond the
query); `render.py` writes it with Jinja2 and WeasyPrint, byte for byte the same for the
same input, and never rewrites the document of a finalized invoice (DECISIONLOG D80).
"""

"""The pure core: plain data in, plain data out.

Config models and validation, image references, freight, tag selection, manifest edits, the
pipeline graph, gates and ``decide()``. Nothing here performs I/O or imports an adapter; the
caller reads files and talks to services, then hands the core values.
"""

"""Demo data for a first look at the back office (`manage.py load_demo`, run by `make run`).

It drives every app's services, as real use does, so it sits on the top layer with
`config` (see docs/developers/architecture.md): no app imports it.
"""

"""Herald's performance harness: ``uv run python -m bench`` (see ``bench/__main__.py``).

Every Herald figure is measured beside a raw baseline in the same run, on the same machine,
against PostgreSQL and a webhook receiver on loopback only.
"""

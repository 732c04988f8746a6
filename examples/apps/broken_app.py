"""An app that cannot be imported, for tests of failed deploys.

Gunicorn's workers fail to boot on it, so a deploy that points at
``broken_app:app`` must be seen to fail and to keep the old release.
"""

raise RuntimeError("broken_app fails at import on purpose")

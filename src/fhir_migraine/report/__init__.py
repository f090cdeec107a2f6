"""The diary as clinicians see it: a month's view (``month``), rendered as HTML and PDF (``render``)."""

"""Behaviour snapshots: what each scenario made the stack do, from its trace, against a committed file.

``derive`` (trace -> behaviour), ``snapshot`` (the committed files),
``compare`` (the differences), ``render`` (terminal, Markdown, HTML),
``junit`` (gated cases), ``run`` (one run's check).
"""

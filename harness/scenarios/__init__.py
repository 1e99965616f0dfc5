"""YAML scenario engine: scenario files describe what the deployed stack must do.

Modules (see FORMAT.md for the file format):

- ``loader``: ``load_file`` / ``load_text`` validate a file into ``model`` objects.
- ``runner``: ``run_scenario`` executes one scenario against a ``runtime.StepRuntime``.
- ``steps``: one executor per action, registered in ``ACTIONS``.
- ``matchers``: ``match`` and the ``!re``/``!ge``/... matcher objects.
- ``templating``: ``{{ expr }}`` checking and rendering (lookups only).
- ``waiting``: ``eventually``, the one polling loop (also used by the Python fixture).
- ``collect``: pytest nodes and ``collect_scenario_file``.

Nothing is imported here so ``harness.scenarios.waiting`` stays cheap to import.
"""

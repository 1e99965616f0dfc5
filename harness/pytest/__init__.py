"""The pytest layer: the plugin entry point and one object per process role.

``plugin`` is the ``pytest11`` entry point (options, collection, and at
configure time one ``Controller`` or ``Worker`` registered as a plugin);
``controller`` owns the run (settings, lifecycle, tracing, shard, run id);
``worker`` reads what the controller sent through ``workerinput`` once;
``signals`` is the whole SIGINT/SIGTERM policy; ``fixtures`` are the fixtures,
which find the role object and import nothing above it.
"""

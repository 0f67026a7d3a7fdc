"""trove-plugin-check: the plugin conformance battery as one command.

runtime    temporary worlds, child processes, a control plane with CURVE and
           agents serving through it (the path a user's command takes)
datastore  the base class a datastore description subclasses
battery    the parts (access, config, backup, replication, cluster, logs)
           and their named checks
main       the command line
"""

"""What the conformance battery needs to know about one datastore.

The battery (battery.py) is one scenario, written once. Each datastore supplies
a small description, tests/conformance/ds_<plugin>.py, that defines
`DATASTORE = <subclass of Datastore>()`. The description starts servers and
reads and writes test data with the datastore's own stock client (mariadb,
psql, redis-cli): never through the agent, so the battery checks what the agent
did from the outside.
"""


class Server:
    """A running database server started by a description.

    settings: the agent's [datastore] section for managing this server (keys
              ending in "password" go to the agent's 0600 secrets file).
    host, port: where a replica reaches it.
    """

    def __init__(self, settings, host, port):
        self.settings = settings
        self.host = host
        self.port = port


class Datastore:
    plugin = None               # plugin name: "mysql", "postgres", "redis"
    # Ops the plugin must answer with not_supported (through the agent).
    expect_unsupported = set()
    # False where database.create/delete are not_supported (Redis).
    databases = True
    # Name of a database the battery may create (or an existing one, when
    # databases is False) and write test rows into.
    test_database = "conformance"
    # (name, value) of a parameter that applies live, and one that needs a restart.
    live_parameter = None
    restart_parameter = None
    # Whether incremental backups are expected to work.
    incremental_backup = True

    def start_server(self, env, index):
        """Start a fresh, empty server in env (a harness.Env) and return a
        Server. `index` (0, 1, 2...) tells servers of one test apart (server
        ids, directories). The server must be stopped when env closes
        (register it with env.callback or env.spawn)."""
        raise NotImplementedError

    def start_empty(self, env, index):
        """A server ready to receive a restore (for most engines the same as
        start_server; engines whose restore needs the server stopped or not
        yet initialised may differ)."""
        return self.start_server(env, index)

    def write_rows(self, server, database, rows):
        """Store rows, a list of (key, value) strings, in `database` (create
        the table/collection if needed), as the admin."""
        raise NotImplementedError

    def read_rows(self, server, database):
        """All (key, value) rows written by write_rows, sorted by key."""
        raise NotImplementedError

    def can_read(self, server, user, password, database, host=None):
        """True if `user` can log in with `password` using the stock client
        and read `database`; False if the server refuses the login or the
        read. Any other outcome (no connection, an unexpected error) raises:
        a server that cannot be reached proves neither access nor its absence."""
        raise NotImplementedError

    def read_parameter(self, server, name):
        """The parameter's effective value as the server reports it."""
        raise NotImplementedError

    def same_value(self, name, wanted, reported):
        """Whether a parameter value reported by the server equals the value
        applied (engines print sizes and booleans their own way)."""
        return str(wanted).lower() == str(reported).lower()

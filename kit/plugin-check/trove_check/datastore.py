"""What trove-plugin-check needs to know about one datastore: the only part a
vendor writes besides the plugin.

A description is a Python file defining `DATASTORE = <a Datastore subclass>()`.
It starts servers and reads and writes test data with the datastore's own
client (never through the agent), so every check looks at what the plugin did
from the outside. Methods raise on trouble; attributes left at their defaults
switch the checks that need them off.
"""


class Server:
    """A running server started by a description.

    settings: the agent's [datastore] section to manage it (keys holding
              "password" or "secret" go to the agent's 0600 secrets file)
    host, port: where a replica or a cluster peer reaches it
    """

    def __init__(self, settings, host, port):
        self.settings = settings
        self.host = host
        self.port = port


class Datastore:
    plugin = None               # the plugin's name (its table's name, its file name)
    # Ops the plugin must answer with not_supported (and leave out of its capabilities).
    expect_unsupported = set()
    databases = True            # False when database.create/delete are not_supported
    test_database = "conformance"   # a database the checks create (or use, when databases is False)
    # (name, value) of a parameter that applies live, and of one that needs a restart.
    live_parameter = None
    restart_parameter = None
    incremental_backup = True   # whether incremental backups are expected to work
    # (option, value) for database.alter, read back with read_database_option.
    database_option = None

    def start_server(self, env, index):
        """Start a fresh, empty server in env (runtime.Env) and return a Server.
        `index` (0, 1, 2...) tells the servers of one part apart. The server
        must be stopped when env closes (env.spawn, or env.callback), even if
        the plugin restarted it meanwhile."""
        raise NotImplementedError

    def write_rows(self, server, database, rows):
        """Store rows, a list of (key, value) strings, in `database`, as the admin."""
        raise NotImplementedError

    def read_rows(self, server, database):
        """All (key, value) rows written by write_rows, sorted by key."""
        raise NotImplementedError

    def can_read(self, server, user, password, database):
        """True if `user` can log in with `password` with the datastore's own
        client and read `database`; False if the server refuses the login or
        the read. Any other outcome (no connection, an unexpected error) raises:
        a server that cannot be reached proves neither access nor its absence."""
        raise NotImplementedError

    def read_parameter(self, server, name):
        """A parameter's effective value as the server reports it."""
        raise NotImplementedError

    def same_value(self, name, wanted, reported):
        """Whether a value the server reports equals the value applied."""
        return str(wanted).lower() == str(reported).lower()

    def read_database_option(self, server, database, option):
        """database_option's value as the server reports it."""
        raise NotImplementedError

    def cluster_members(self, server):
        """The members the server itself reports, as a set of "host:port"."""
        raise NotImplementedError

"""The stand-in's configuration: a reader for the YAML subset cassandra.yaml
uses (block maps and lists, flow [] and {}, quoted and plain scalars), the
settings Cassandra 4.0 knows with their defaults, and the checks the real
server makes at startup (unknown keys are refused the way Cassandra refuses
them)."""
import os
import re


class ConfigError(Exception):
    pass


# ---- YAML subset ----

def _strip_comment(line):
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _scalar(text):
    t = text.strip()
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if len(t) >= 2 and t[0] == t[-1] == '"':
        return bytes(t[1:-1], "utf-8").decode("unicode_escape") if "\\" in t else t[1:-1]
    if len(t) >= 2 and t[0] == t[-1] == "'":
        return t[1:-1].replace("''", "'")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t == "[]":
        return []
    if t == "{}":
        return {}
    if t.startswith("[") and t.endswith("]"):
        return [_scalar(x) for x in t[1:-1].split(",") if x.strip()]
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", t):
        return float(t)
    return t


def _split_key(content, lineno):
    m = re.match(r"""^("(?:[^"]*)"|'(?:[^']*)'|[^:'"]+?)\s*:(\s+(.*))?$""", content)
    if not m:
        raise ConfigError(f"line {lineno}: expected 'key: value'")
    return _scalar(m.group(1)), (m.group(3) if m.group(2) else "")


def parse_yaml(text):
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in ("---", "..."):
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise ConfigError(f"line {n}: tabs are not allowed for indentation")
        body = _strip_comment(raw)
        if body.strip():
            lines.append((len(body) - len(body.lstrip()), body.strip(), n))
    if not lines:
        return {}
    value, pos = _block(lines, 0, lines[0][0])
    if pos != len(lines):
        raise ConfigError(f"line {lines[pos][2]}: unexpected indentation")
    return value


def _block(lines, pos, indent):
    if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
        return _sequence(lines, pos, indent)
    return _mapping(lines, pos, indent)


def _mapping(lines, pos, indent):
    out = {}
    while pos < len(lines) and lines[pos][0] == indent and not lines[pos][1].startswith("- "):
        _, content, n = lines[pos]
        key, rest = _split_key(content, n)
        pos += 1
        if rest.strip():
            out[key] = _scalar(rest)
        elif pos < len(lines) and (lines[pos][0] > indent or
                                   (lines[pos][0] == indent and lines[pos][1].startswith("- "))):
            out[key], pos = _block(lines, pos, lines[pos][0])
        else:
            out[key] = None
    return out, pos


def _sequence(lines, pos, indent):
    out = []
    while pos < len(lines) and lines[pos][0] == indent and (lines[pos][1].startswith("- ") or lines[pos][1] == "-"):
        _, content, n = lines[pos]
        item = content[1:].strip()
        if not item:
            pos += 1
            value, pos = _block(lines, pos, lines[pos][0]) if pos < len(lines) and lines[pos][0] > indent else (None, pos)
            out.append(value)
            continue
        if re.match(r"""^("[^"]*"|'[^']*'|[^:'"\[{]+?)\s*:(\s|$)""", item):
            # "- key: value" opens a map whose other keys are indented to the item's text
            inner = indent + (len(content) - len(item))
            lines[pos] = (inner, item, n)
            value, pos = _mapping(lines, pos, inner)
            out.append(value)
        else:
            out.append(_scalar(item))
            pos += 1
    return out, pos


# ---- Cassandra 4.0 settings ----

DEFAULTS = {
    "cluster_name": "Test Cluster", "num_tokens": 16, "allocate_tokens_for_local_replication_factor": 3,
    "initial_token": None, "hinted_handoff_enabled": True, "max_hint_window_in_ms": 10800000,
    "hinted_handoff_throttle_in_kb": 1024, "max_hints_delivery_threads": 2, "hints_directory": None,
    "hints_flush_period_in_ms": 10000, "max_hints_file_size_in_mb": 128, "batchlog_replay_throttle_in_kb": 1024,
    "authenticator": "AllowAllAuthenticator", "authorizer": "AllowAllAuthorizer",
    "role_manager": "CassandraRoleManager", "network_authorizer": "AllowAllNetworkAuthorizer",
    "roles_validity_in_ms": 2000, "permissions_validity_in_ms": 2000, "credentials_validity_in_ms": 2000,
    "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner", "data_file_directories": None,
    "commitlog_directory": None, "cdc_enabled": False, "cdc_raw_directory": None,
    "disk_failure_policy": "stop", "commit_failure_policy": "stop", "prepared_statements_cache_size_mb": None,
    "key_cache_size_in_mb": None, "key_cache_save_period": 14400, "row_cache_size_in_mb": 0,
    "row_cache_save_period": 0, "counter_cache_size_in_mb": None, "counter_cache_save_period": 7200,
    "saved_caches_directory": None, "commitlog_sync": "periodic", "commitlog_sync_period_in_ms": 10000,
    "commitlog_segment_size_in_mb": 32, "seed_provider": None, "concurrent_reads": 32,
    "concurrent_writes": 32, "concurrent_counter_writes": 32, "concurrent_materialized_view_writes": 32,
    "memtable_allocation_type": "heap_buffers", "memtable_heap_space_in_mb": None,
    "memtable_offheap_space_in_mb": None, "memtable_flush_writers": None, "commitlog_total_space_in_mb": None,
    "index_summary_capacity_in_mb": None, "index_summary_resize_interval_in_minutes": 60,
    "trickle_fsync": False, "trickle_fsync_interval_in_kb": 10240, "storage_port": 7000, "ssl_storage_port": 7001,
    "listen_address": "localhost", "listen_interface": None, "broadcast_address": None,
    "listen_on_broadcast_address": False, "internode_authenticator": None, "start_native_transport": True,
    "native_transport_port": 9042, "native_transport_port_ssl": None, "native_transport_max_threads": 128,
    "native_transport_max_frame_size_in_mb": 16, "native_transport_max_concurrent_connections": -1,
    "native_transport_max_concurrent_connections_per_ip": -1, "native_transport_allow_older_protocols": True,
    "rpc_address": "localhost", "rpc_interface": None, "broadcast_rpc_address": None, "rpc_keepalive": True,
    "incremental_backups": False, "snapshot_before_compaction": False, "auto_snapshot": True,
    "snapshot_links_per_second": 0, "column_index_size_in_kb": 64, "column_index_cache_size_in_kb": 2,
    "concurrent_compactors": None, "concurrent_validations": 0, "concurrent_materialized_view_builders": 1,
    "compaction_throughput_mb_per_sec": 64, "sstable_preemptive_open_interval_in_mb": 50,
    "stream_entire_sstables": True, "stream_throughput_outbound_megabits_per_sec": 200,
    "inter_dc_stream_throughput_outbound_megabits_per_sec": 200, "read_request_timeout_in_ms": 5000,
    "range_request_timeout_in_ms": 10000, "write_request_timeout_in_ms": 2000,
    "counter_write_request_timeout_in_ms": 5000, "cas_contention_timeout_in_ms": 1000,
    "truncate_request_timeout_in_ms": 60000, "request_timeout_in_ms": 10000, "slow_query_log_timeout_in_ms": 500,
    "cross_node_timeout": False, "phi_convict_threshold": 8, "endpoint_snitch": "SimpleSnitch",
    "dynamic_snitch_update_interval_in_ms": 100, "dynamic_snitch_reset_interval_in_ms": 600000,
    "dynamic_snitch_badness_threshold": 0.1, "server_encryption_options": None,
    "client_encryption_options": None, "internode_compression": "dc", "inter_dc_tcp_nodelay": False,
    "tracetype_query_ttl": 86400, "tracetype_repair_ttl": 604800, "enable_user_defined_functions": False,
    "enable_scripted_user_defined_functions": False, "windows_timer_interval": 1,
    "transparent_data_encryption_options": None, "tombstone_warn_threshold": 1000,
    "tombstone_failure_threshold": 100000, "replica_filtering_protection": None,
    "batch_size_warn_threshold_in_kb": 5, "batch_size_fail_threshold_in_kb": 50,
    "unlogged_batch_across_partitions_warn_threshold": 10, "compaction_large_partition_warning_threshold_mb": 100,
    "gc_log_threshold_in_ms": 200, "gc_warn_threshold_in_ms": 1000, "max_value_size_in_mb": 256,
    "otc_coalescing_strategy": "DISABLED", "auto_bootstrap": True, "enable_materialized_views": False,
    "enable_sasi_indexes": False, "enable_transient_replication": False, "ideal_consistency_level": None,
    "automatic_sstable_upgrade": False, "max_concurrent_automatic_sstable_upgrades": 1,
    "audit_logging_options": None, "full_query_logging_options": None, "corrupted_tombstone_strategy": "disabled",
    "diagnostic_events_enabled": False, "native_transport_flush_in_batches_legacy": False,
    "repaired_data_tracking_for_range_reads_enabled": False,
    "repaired_data_tracking_for_partition_reads_enabled": False, "report_unconfirmed_repaired_data_mismatches": False,
    "materialized_views_on_repaired_data": True, "file_cache_size_in_mb": None, "buffer_pool_use_heap_if_exhausted": False,
    "disk_optimization_strategy": "ssd", "networking_cache_size_in_mb": None, "file_cache_enabled": False,
    "streaming_keep_alive_period_in_secs": 300, "streaming_connections_per_host": 1,
    "internode_application_send_queue_capacity_in_bytes": 4194304,
    "internode_application_receive_queue_capacity_in_bytes": 4194304, "internode_tcp_connect_timeout_in_ms": 2000,
    "internode_tcp_user_timeout_in_ms": 30000, "commitlog_compression": None, "flush_compression": "fast",
    "periodic_commitlog_sync_lag_block_in_ms": None, "commitlog_sync_batch_window_in_ms": None,
    "commitlog_sync_group_window_in_ms": None, "autocompaction_on_startup_enabled": True,
    "auto_optimise_inc_repair_streams": False, "auto_optimise_full_repair_streams": False,
    "auto_optimise_preview_repair_streams": False, "consecutive_message_errors_threshold": 1,
    "check_for_duplicate_rows_during_reads": True, "check_for_duplicate_rows_during_compaction": True,
    "validation_preview_purge_head_start_in_sec": 3600, "use_offheap_merkle_trees": True,
    "user_defined_function_warn_timeout": 500, "user_defined_function_fail_timeout": 1500,
    "user_function_timeout_policy": "die", "back_pressure_enabled": False, "back_pressure_strategy": None,
    "table_count_warn_threshold": 150, "keyspace_count_warn_threshold": 40,
    "initial_range_tombstone_list_allocation_size": 1, "range_tombstone_list_growth_factor": 1.5,
    "snapshot_on_duplicate_row_detection": False,
    "native_transport_idle_timeout_in_ms": 0, "native_transport_receive_queue_capacity_in_bytes": 1048576,
    "native_transport_max_concurrent_requests_in_bytes": None,
    "native_transport_max_concurrent_requests_in_bytes_per_ip": None, "native_transport_max_negotiable_protocol_version": None,
    "minimum_replication_factor_fail_threshold": None, "block_for_peers_in_remote_dcs": False,
    "block_for_peers_timeout_in_secs": 10, "key_cache_keys_to_save": None, "row_cache_keys_to_save": None,
    "counter_cache_keys_to_save": None, "row_cache_class_name": None, "max_streaming_retries": None,
    "local_system_data_file_directory": None,
}

# What nodetool can change while the node runs (and so what a restart does not need).
RUNTIME_SETTABLE = {
    "compaction_throughput_mb_per_sec", "stream_throughput_outbound_megabits_per_sec",
    "inter_dc_stream_throughput_outbound_megabits_per_sec", "concurrent_compactors",
    "read_request_timeout_in_ms", "range_request_timeout_in_ms", "write_request_timeout_in_ms",
    "counter_write_request_timeout_in_ms", "cas_contention_timeout_in_ms", "truncate_request_timeout_in_ms",
    "request_timeout_in_ms", "hinted_handoff_throttle_in_kb", "batchlog_replay_throttle_in_kb",
    "incremental_backups", "tombstone_warn_threshold", "tombstone_failure_threshold",
}

AUTHENTICATORS = {"AllowAllAuthenticator": False, "PasswordAuthenticator": True}
AUTHORIZERS = {"AllowAllAuthorizer": False, "CassandraAuthorizer": True}
SNITCHES = {"SimpleSnitch", "GossipingPropertyFileSnitch", "PropertyFileSnitch"}


def _short_class(name):
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else name


class Config:
    """cassandra.yaml merged over the defaults, plus what the launcher passed."""

    def __init__(self, path, properties=None):
        self.path = path
        self.properties = properties or {}
        try:
            with open(path, encoding="utf-8") as f:
                raw = parse_yaml(f.read())
        except OSError as e:
            raise ConfigError(f"Cannot locate {path}: {e.strerror}")
        if not isinstance(raw, dict):
            raise ConfigError("Invalid yaml: the top level must be a map")
        unknown = sorted(k for k in raw if k not in DEFAULTS)
        if unknown:
            raise ConfigError(f"Invalid yaml. Please remove properties [{', '.join(map(str, unknown))}] from your "
                              f"cassandra.yaml")
        self.values = dict(DEFAULTS)
        self.values.update(raw)
        self._derive()

    def __getitem__(self, key):
        return self.values[key]

    def _derive(self):
        v = self.values
        home = os.path.dirname(os.path.abspath(self.path))
        if not v["data_file_directories"]:
            raise ConfigError("data_file_directories is not set (the stand-in needs it explicitly)")
        if isinstance(v["data_file_directories"], str):
            v["data_file_directories"] = [v["data_file_directories"]]
        self.data_dir = os.path.abspath(v["data_file_directories"][0])
        base = os.path.dirname(self.data_dir)
        self.commitlog_dir = os.path.abspath(v["commitlog_directory"] or os.path.join(base, "commitlog"))
        v["commitlog_directory"] = self.commitlog_dir
        v["hints_directory"] = v["hints_directory"] or os.path.join(base, "hints")
        v["saved_caches_directory"] = v["saved_caches_directory"] or os.path.join(base, "saved_caches")
        self.listen_address = _address(v["listen_address"])
        self.rpc_address = _address(v["rpc_address"])
        self.broadcast_rpc_address = _address(v["broadcast_rpc_address"] or self.rpc_address)
        if self.broadcast_rpc_address == "0.0.0.0":
            raise ConfigError("If rpc_address is set to a wildcard address (0.0.0.0), then you must set "
                              "broadcast_rpc_address to a value other than 0.0.0.0")
        self.native_port = int(v["native_transport_port"])
        self.storage_port = int(v["storage_port"])
        auth = _short_class(v["authenticator"])
        if auth not in AUTHENTICATORS:
            raise ConfigError(f"Unable to find authenticator class '{v['authenticator']}' (the stand-in knows "
                              f"{', '.join(AUTHENTICATORS)})")
        self.password_auth = AUTHENTICATORS[auth]
        authz = _short_class(v["authorizer"])
        if authz not in AUTHORIZERS:
            raise ConfigError(f"Unable to find authorizer class '{v['authorizer']}'")
        self.authorization = AUTHORIZERS[authz]
        if self.authorization and not self.password_auth:
            raise ConfigError("CassandraAuthorizer requires an authenticator that requires authentication "
                              "(PasswordAuthenticator)")
        snitch = _short_class(v["endpoint_snitch"])
        if snitch not in SNITCHES:
            raise ConfigError(f"Unable to find snitch class '{v['endpoint_snitch']}'")
        self.snitch = snitch
        self.dc, self.rack = "datacenter1", "rack1"
        if snitch == "GossipingPropertyFileSnitch":
            self.dc, self.rack = _rackdc(os.path.join(home, "cassandra-rackdc.properties"))
        self.seeds = _seeds(v["seed_provider"])
        self.num_tokens = int(v["num_tokens"] or 1)
        self.max_frame = int(v["native_transport_max_frame_size_in_mb"]) * 1024 * 1024

    def settings_rows(self):
        """(name, value text) pairs as system_views.settings shows them."""
        rows = []
        for name in sorted(self.values):
            rows.append((name, _setting_text(self.values[name])))
        return rows


def _address(value):
    if value in (None, "localhost"):
        return "127.0.0.1"
    return str(value)


def _rackdc(path):
    dc, rack = "dc1", "rack1"
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if "=" in line:
                    k, v = (x.strip() for x in line.split("=", 1))
                    if k == "dc":
                        dc = v
                    elif k == "rack":
                        rack = v
    except OSError:
        raise ConfigError(f"Unable to read {path}")
    return dc, rack


def _seeds(provider):
    if not provider:
        return ["127.0.0.1"]
    try:
        params = provider[0]["parameters"][0]
        seeds = params["seeds"]
    except (KeyError, IndexError, TypeError):
        raise ConfigError("seed_provider must name a class_name and parameters with seeds")
    return [s.strip() for s in str(seeds).split(",") if s.strip()]


def _setting_text(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and "class_name" in value[0]:
            p = value[0].get("parameters") or [{}]
            inner = ", ".join(f"{k}={v}" for k, v in (p[0] or {}).items())
            return f"{value[0]['class_name']}{{{inner}}}"
        return "[" + ", ".join(str(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    return str(value)


def setting_text(value):
    return _setting_text(value)

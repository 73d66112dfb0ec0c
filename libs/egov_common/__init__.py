"""Shared server library: settings, errors, logging, telemetry, server bootstrap, channels.

Public modules (import from these; names starting with ``_`` are internal):

- ``errors``: ``EgovError`` + one subclass per gRPC code, ``FieldViolation``, ``Code`` (no grpc)
- ``status``: ``from_rpc_error`` (client side), ``to_grpc_status`` (used by the server)
- ``settings``: ``ServiceSettings``, ``load_settings``, ``load_settings_or_exit``,
  ``peer_address``, ``SettingsError``, ``DEFAULT_PORTS``
- ``server``: ``GrpcService``, ``serve`` (``EGOV_<NAME>_PROCESSES`` worker processes on one port),
  ``build_server``, ``ListenError``, ``EXIT_CANNOT_LISTEN``
- ``streams``: ``client_stream`` (a client stream that ends only on the client's half-close;
  the server hands servicers their request streams this way already)
- ``auth``: ``Caller``, ``CallerKind``, ``current_caller``, ``TokenVerifier``, ``caller_scope``
- ``deadlines``: ``remaining``
- ``channels``: ``open_channel``
- ``tls``: dev service CA and mTLS credentials; ``peer_service`` (the caller's service name,
  from its certificate's DNS SANs)
- ``telemetry``: ``setup`` (OpenTelemetry tracer and meter providers)
- ``logging``: ``mask_identifier``, ``mask_text``, ``setup_logging``
- ``db``: ``make_engine``, ``upgrade_to_head`` and ``migration_transaction`` (migrations in one
  transaction), ``WriterTurn`` (one writer at a time),
  ``WalCheckpoints`` (SQLite WAL checkpoints off the commit path), ``HotConnections``
- ``forking``: ``in_forked_children``, ``held_during_forks`` (for ``EGOV_<NAME>_PROCESSES`` > 1)
- ``clock``: ``Clock``, ``SystemClock``, ``FixedClock``
"""

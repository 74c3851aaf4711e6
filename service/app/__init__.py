"""Assembly: configuration, the call chain, the gRPC server, the CLI."""

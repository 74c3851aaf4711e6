"""State machines and rules. Imports neither grpc nor fastapi."""

"""The JSON gateway: a FastAPI app generated from the protos' HttpRule bindings."""

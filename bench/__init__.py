"""The benchmark: the service and the SDK way side by side against the sandbox store."""

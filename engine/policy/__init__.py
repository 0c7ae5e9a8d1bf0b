"""Policy files: reading YAML safely, validating structure, resolving `extends`."""

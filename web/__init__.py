"""What every HTTP door shares: the one JSON error shape, authentication by API key, the
request's read session and its unit of work, and reading uploads. Below the doors, above the
services."""

"""CLI subcommands; every module here exposes `register(subparsers)`."""

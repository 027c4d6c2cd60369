"""What the CLI's subcommands do, kept out of argument parsing."""

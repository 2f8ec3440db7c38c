"""What a run reports: the stdout tables, the targets checked, the JSON file."""

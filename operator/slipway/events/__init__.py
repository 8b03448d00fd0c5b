"""CloudEvents: type names, building and parsing (structured and binary HTTP mode)."""

"""The shop's store: events, items, shoppers' words and jobs (SQLite or PostgreSQL), and reading shop files."""

"""Input contracts: JSON Schemas (package data), loaders and semantic checks for protocols,
orders and diaries. Pure: callers hand in text or parsed documents; nothing here does I/O
beyond reading the package's own schemas."""

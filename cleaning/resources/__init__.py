"""Data shipped with the cleaning package (division table, industry tables, free-mail list)."""

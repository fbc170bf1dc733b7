"""The reporting layer: view SQL shared by Trino and DuckDB, and the engines that run it."""

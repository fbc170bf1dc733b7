"""Assets that query the platform: the reporting views in Trino."""

"""Loop datasets: extraction from sources, the Parquet store, splits."""

"""地理编码: free-text Chinese addresses → gazetteer place → unit grid (docs/geocoding.md)."""

"""Data: the embedded shapes domain and (for real data) webdataset shards."""

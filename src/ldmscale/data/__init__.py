"""Data: the embedded domains (`domains`: `shapes`, `scenes`) and (for real data) webdataset
shards."""

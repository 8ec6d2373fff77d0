from s3_server import s3_bucket, s3_endpoint  # noqa: F401

from dead_endpoints import fake_credentials, refused_endpoint, silent_endpoint  # noqa: F401
from s3_server import s3_bucket, s3_endpoint  # noqa: F401

"""The local S3 server as an operator sees it."""

from __future__ import annotations


def s3_keys(root: str) -> list[str]:
    """Every object key under an `s3://bucket/prefix` root (through boto3, as an operator would list it)."""
    import boto3

    bucket, _, prefix = root[len("s3://"):].partition("/")
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) + 1:] for page in pages for item in page.get("Contents", []))

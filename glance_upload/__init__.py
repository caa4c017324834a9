"""Upload big files to the Glance v1 service through its presigned upload extension.

    python -m glance_upload FILE --url http://127.0.0.1:9292 [options]

The bytes go from this machine straight to S3 (presigned part URLs, in parallel);
the API only reserves, completes and verifies (size and MD5). A JSON state file
next to FILE makes an interrupted upload resumable: run the same command again.

This is a client, not part of the Lambda package (chalicelib/): it only needs
`requests` and `tqdm`.
"""

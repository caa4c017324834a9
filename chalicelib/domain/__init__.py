"""The rules of Glance v1: plain Python, no HTTP and no AWS."""
